//! Images gatehouse keeps: record thumbnails and user pictures, stored in
//! the store as blobs with their content type and size.

use super::projects::ResourceId;
use super::user::UserId;
use serde::{Deserialize, Serialize};

/// Which image a blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKey {
    /// The thumbnail of a record's media file.
    Thumbnail(ResourceId),
    /// A user's picture, as uploaded (re-encoded).
    Picture(UserId),
    /// A user's picture, thumbnail-sized.
    PictureThumbnail(UserId),
}

impl MediaKey {
    /// The store key: a kind byte, then the id big-endian.
    pub fn bytes(self) -> [u8; 9] {
        let (kind, id) = match self {
            Self::Thumbnail(id) => (1u8, id),
            Self::Picture(id) => (2, id),
            Self::PictureThumbnail(id) => (3, id),
        };
        let mut key = [0u8; 9];
        key[0] = kind;
        key[1..].copy_from_slice(&id.to_be_bytes());
        key
    }

    /// Reads what [`Self::bytes`] wrote.
    pub fn from_bytes(raw: &[u8]) -> Option<Self> {
        let (&kind, id) = raw.split_first()?;
        let id = u64::from_be_bytes(id.try_into().ok()?);
        match kind {
            1 => Some(Self::Thumbnail(id)),
            2 => Some(Self::Picture(id)),
            3 => Some(Self::PictureThumbnail(id)),
            _ => None,
        }
    }
}

/// An encoded image and what describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// What a record or user says about an image it has, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageInfo {
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

impl StoredImage {
    pub fn info(&self) -> ImageInfo {
        ImageInfo {
            content_type: self.content_type.clone(),
            width: self.width,
            height: self.height,
            bytes: self.data.len() as u64,
        }
    }

    /// `[type length][type][width][height][data]`, integers big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let content_type = self.content_type.as_bytes();
        let length = u8::try_from(content_type.len()).unwrap_or(u8::MAX);
        let mut out = Vec::with_capacity(9 + content_type.len() + self.data.len());
        out.push(length);
        out.extend_from_slice(&content_type[..usize::from(length)]);
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads what [`Self::encode`] wrote; `None` for anything else.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let (&length, rest) = raw.split_first()?;
        let length = usize::from(length);
        let content_type = std::str::from_utf8(rest.get(..length)?).ok()?.to_owned();
        let rest = rest.get(length..)?;
        let width = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let height = u32::from_be_bytes(rest.get(4..8)?.try_into().ok()?);
        Some(Self {
            content_type,
            width,
            height,
            data: rest.get(8..)?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_and_garbage_is_refused() {
        let image = StoredImage {
            content_type: "image/jpeg".into(),
            width: 512,
            height: 341,
            data: vec![0xff, 0xd8, 1, 2, 3],
        };
        assert_eq!(StoredImage::decode(&image.encode()), Some(image.clone()));
        for garbage in [&[][..], &[200, b'a'], &[3, b'a', b'b', b'c', 0, 0]] {
            assert_eq!(StoredImage::decode(garbage), None);
        }
        assert_ne!(MediaKey::Picture(7).bytes(), MediaKey::Thumbnail(7).bytes());
        for key in [
            MediaKey::Thumbnail(1),
            MediaKey::Picture(u64::MAX),
            MediaKey::PictureThumbnail(9),
        ] {
            assert_eq!(MediaKey::from_bytes(&key.bytes()), Some(key));
        }
        assert_eq!(MediaKey::from_bytes(&[4, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(image.info().bytes, 5);
    }
}
