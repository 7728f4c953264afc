//! Settings for field data: whether editing needs an organization, and the
//! limits of thumbnails and user pictures.

use serde::Deserialize;

/// How organizations gate record changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationsConfig {
    /// When true, users without an organization may only view records and
    /// projects (To The Trails); when false (the default), anyone may create
    /// records and projects (Trap.NZ, Trapper).
    pub required_for_editing: bool,
}

/// Thumbnails of record media, and the limits any uploaded image must meet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThumbnailConfig {
    /// Longest side of a thumbnail, in pixels.
    pub max_px: u32,
    /// Largest image file read, in MiB.
    pub max_source_mb: u64,
    /// Most pixels (width × height, in millions) an image may declare;
    /// larger ones are refused before decoding (decompression bombs).
    pub max_source_megapixels: u64,
}

impl Default for ThumbnailConfig {
    fn default() -> Self {
        Self {
            max_px: 512,
            max_source_mb: 64,
            max_source_megapixels: 64,
        }
    }
}

/// User pictures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PictureConfig {
    /// Largest picture upload, in MiB.
    pub max_mb: u64,
    /// Longest side of the stored picture, in pixels (it is re-encoded).
    pub max_px: u32,
}

impl Default for PictureConfig {
    fn default() -> Self {
        Self {
            max_mb: 10,
            max_px: 1024,
        }
    }
}
