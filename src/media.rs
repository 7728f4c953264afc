//! Image handling for thumbnails and pictures: the format is read from the
//! content (JPEG, PNG and WebP only), the declared size is checked before
//! anything is decoded (decompression bombs), decoding runs under a memory
//! limit, EXIF orientation is applied, and the result is re-encoded (JPEG, or
//! PNG when the image has transparency), so nothing of the upload but its
//! pixels is kept.

use crate::domain::media::StoredImage;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;
use std::sync::{Condvar, Mutex};

/// JPEG quality of what we encode.
const JPEG_QUALITY: u8 = 85;

/// What an image may be before it is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest file.
    pub max_bytes: u64,
    /// Most pixels (width × height) an image may declare.
    pub max_pixels: u64,
}

/// Why an image was refused; `code()` names it in API answers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the file is {bytes} bytes, more than the {limit} allowed")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the image is {width}×{height} pixels, more than the {limit} allowed")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("not a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error("the image is damaged: {0}")]
    Damaged(String),
}

impl ImageError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::TooManyPixels { .. } => "too_many_pixels",
            Self::NotAnImage => "not_an_image",
            Self::Damaged(_) => "damaged_image",
        }
    }
}

/// Decodes `bytes` within `limits`, upright.
fn decode(bytes: &[u8], limits: ImageLimits) -> Result<DynamicImage, ImageError> {
    let length = bytes.len() as u64;
    if length > limits.max_bytes {
        return Err(ImageError::TooLarge {
            bytes: length,
            limit: limits.max_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| ImageError::NotAnImage)?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)
    ) {
        return Err(ImageError::NotAnImage);
    }
    let damaged = |error: image::ImageError| ImageError::Damaged(error.to_string());
    let mut decoder = reader.into_decoder().map_err(damaged)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    // The image crate's own memory limit (512 MiB) stays in force where its
    // decoders honour it; the pixel count above bounds the rest.
    decoder
        .set_limits(image::Limits::default())
        .map_err(damaged)?;
    let orientation = decoder.orientation().map_err(damaged)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Encodes `image` as JPEG, or PNG when it has transparency.
fn encode(image: &DynamicImage) -> Result<StoredImage, ImageError> {
    let mut data = Vec::new();
    let failed = |error: image::ImageError| ImageError::Damaged(error.to_string());
    let content_type = if image.color().has_alpha() {
        image
            .write_to(&mut Cursor::new(&mut data), ImageFormat::Png)
            .map_err(failed)?;
        "image/png"
    } else {
        let rgb = image.to_rgb8();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, JPEG_QUALITY);
        rgb.write_with_encoder(encoder).map_err(failed)?;
        "image/jpeg"
    };
    Ok(StoredImage {
        content_type: content_type.to_owned(),
        width: image.width(),
        height: image.height(),
        data,
    })
}

/// At most one image per core is decoded at a time, whoever asks (thumbnail
/// jobs, picture uploads): each decoded image may take hundreds of MiB.
struct DecodeSlots {
    busy: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: DecodeSlots = DecodeSlots {
    busy: Mutex::new(0),
    freed: Condvar::new(),
};

/// A slot held until dropped.
struct Slot;

impl Slot {
    fn take() -> Self {
        // Asked once: on Linux the answer comes from reading cgroup files.
        static CORES: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        });
        let cores = *CORES;
        let mut busy = SLOTS.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= cores {
            busy = SLOTS.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = SLOTS.busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        SLOTS.freed.notify_one();
    }
}

/// The image in `bytes`, upright and at most `max_px` on its longer side
/// (never enlarged), re-encoded.
pub fn resized(bytes: &[u8], max_px: u32, limits: ImageLimits) -> Result<StoredImage, ImageError> {
    let _slot = Slot::take();
    let image = decode(bytes, limits)?;
    let image = if image.width() > max_px || image.height() > max_px {
        image.thumbnail(max_px, max_px)
    } else {
        image
    };
    encode(&image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    const LIMITS: ImageLimits = ImageLimits {
        max_bytes: 8 << 20,
        max_pixels: 4_000_000,
    };

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, _| Rgb([(x % 256) as u8, 80, 160]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    #[test]
    fn thumbnails_keep_the_aspect_and_never_grow() {
        let thumb = resized(&jpeg(1200, 800), 512, LIMITS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((thumb.width, thumb.height), (512, 341));
        assert_eq!(thumb.content_type, "image/jpeg");
        assert_eq!(&thumb.data[..2], &[0xff, 0xd8]);
        let small = resized(&jpeg(100, 60), 512, LIMITS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((small.width, small.height), (100, 60));
    }

    #[test]
    fn webp_is_read_and_stored_as_jpeg() {
        let image = RgbImage::from_fn(640, 480, |x, y| Rgb([x as u8, y as u8, 30]));
        let mut webp = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut webp), ImageFormat::WebP)
            .unwrap_or_else(|e| panic!("{e}"));
        let out = resized(&webp, 320, LIMITS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (out.content_type.as_str(), out.width, out.height),
            ("image/jpeg", 320, 240)
        );
    }

    #[test]
    fn transparency_is_kept_as_png() {
        let image = RgbaImage::from_pixel(40, 20, Rgba([1, 2, 3, 100]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        let out = resized(&png, 10, LIMITS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (out.content_type.as_str(), out.width, out.height),
            ("image/png", 10, 5)
        );
    }

    /// CRC-32 as PNG chunks carry it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn bombs_garbage_and_other_formats_are_refused() {
        // A real 1×1 PNG whose header is changed to declare 100,000 ×
        // 100,000 pixels (with the header's checksum made right again).
        let mut bomb = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::new(1, 1))
            .write_to(&mut Cursor::new(&mut bomb), ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            resized(&bomb, 512, LIMITS),
            Err(ImageError::TooManyPixels { width: 100_000, .. })
        ));
        assert_eq!(resized(b"hello", 512, LIMITS), Err(ImageError::NotAnImage));
        assert_eq!(
            resized(b"GIF89a....", 512, LIMITS),
            Err(ImageError::NotAnImage)
        );
        // A PNG cut short (JPEG decoders fill in what is missing).
        let mut truncated = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
            Rgb([x as u8, y as u8, 7])
        }))
        .write_to(&mut Cursor::new(&mut truncated), ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            resized(&truncated, 512, LIMITS).map_err(|e| e.code()),
            Err("damaged_image")
        );
        let big = jpeg(64, 64);
        let tight = ImageLimits {
            max_bytes: 10,
            ..LIMITS
        };
        assert_eq!(
            resized(&big, 512, tight).map_err(|e| e.code()),
            Err("too_large")
        );
    }
}
