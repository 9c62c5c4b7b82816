//! Images on a compute device. On a GPU they are packed four pixels to a u32 (a 60k x 784 f32 copy
//! would exceed the common 128 MiB binding limit) and the kernels scale bytes to [0, 1]; on the CPU
//! backend they are f32 in [0, 1], ready for the matrix products. Labels are u32 on both.

use anyhow::Result;

use super::{Dataset, ImageShape};
use crate::backend::{f32_bytes, Buffer, Device, Footprint};

/// A dataset resident on a device (cloning shares the buffers).
#[derive(Clone)]
pub struct DeviceImages {
    /// The images: packed bytes on a GPU, f32 on the CPU backend.
    pub pixels: Buffer,
    /// One u32 label per image.
    pub labels: Buffer,
    /// The number of images.
    pub count: usize,
    /// The shape of every image.
    pub shape: ImageShape,
    /// The device holding the buffers.
    pub device: Device,
}

impl DeviceImages {
    /// The memory of `count` images of `shape` with their labels in device buffers ([`DeviceImages::empty`]).
    pub fn device_bytes(device: &Device, shape: ImageShape, count: usize) -> Footprint {
        Footprint::device(f32_bytes(device.image_elements(count * shape.pixels()) + count))
    }

    /// The memory `data` takes once uploaded to `device`: the dataset on the host, as allocated when
    /// loaded (a `--train-size` subset keeps its split's allocation), and its device copy.
    pub fn footprint(device: &Device, data: &Dataset) -> Footprint {
        let host = (data.pixels.capacity() + data.labels.capacity()) as u64;
        Footprint::host(host) + DeviceImages::device_bytes(device, data.shape, data.len())
    }

    /// Room for `count` images of `shape` and their labels, filled on the device (the mini-batches of
    /// `optim`).
    pub fn empty(device: &Device, count: usize, shape: ImageShape) -> Result<DeviceImages> {
        Ok(DeviceImages {
            pixels: device.zeros(device.image_elements(count * shape.pixels()), "batch images")?,
            labels: device.zeros(count, "batch labels")?,
            count,
            shape,
            device: device.clone(),
        })
    }

    /// Copies a dataset to the device: each byte b becomes the pixel value b / 255 (on a GPU the kernels
    /// scale the packed bytes), each label a u32.
    pub fn upload(device: &Device, data: &Dataset) -> Result<DeviceImages> {
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        Ok(DeviceImages {
            pixels: device.upload_images(&data.pixels, "images")?,
            labels: device.upload(&labels, "labels")?,
            count: data.len(),
            shape: data.shape,
            device: device.clone(),
        })
    }
}
