//! Images on a compute device. On a GPU they are packed four pixels to a u32 (a 60k x 784 f32 copy
//! would exceed the common 128 MiB binding limit) and the kernels scale bytes to [0, 1]; on the CPU
//! backend they are f32 in [0, 1], ready for the matrix products. Labels are u32 on both.

use anyhow::Result;

use super::{Dataset, PIXELS};
use crate::backend::{Buffer, Device};

/// A dataset resident on a device (cloning shares the buffers).
#[derive(Clone)]
pub struct DeviceImages {
    pub pixels: Buffer,
    pub labels: Buffer,
    pub count: usize,
    pub device: Device,
}

/// Elements of the pixel buffer per image on this device.
fn pixel_elements(device: &Device) -> usize {
    if device.is_cpu() {
        PIXELS
    } else {
        PIXELS / 4
    }
}

impl DeviceImages {
    /// Room for `count` images and labels, filled on the device (mini-batches).
    pub fn empty(device: &Device, count: usize) -> Result<DeviceImages> {
        Ok(DeviceImages {
            pixels: device.zeros(count * pixel_elements(device), "batch images")?,
            labels: device.zeros(count, "batch labels")?,
            count,
            device: device.clone(),
        })
    }

    pub fn upload(device: &Device, data: &Dataset) -> Result<DeviceImages> {
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        let pixels = if device.is_cpu() {
            let scaled: Vec<f32> = data.pixels.iter().map(|&b| b as f32 / 255.0).collect();
            device.upload(&scaled, "images")?
        } else {
            let mut packed = vec![0u32; data.pixels.len().div_ceil(4)];
            for (i, &b) in data.pixels.iter().enumerate() {
                packed[i / 4] |= (b as u32) << (8 * (i % 4));
            }
            device.upload(&packed, "images")?
        };
        Ok(DeviceImages {
            pixels,
            labels: device.upload(&labels, "labels")?,
            count: data.len(),
            device: device.clone(),
        })
    }
}
