//! Per-operation timing of the CPU backend's submissions (`bench --profile`): which operation of an
//! evaluation takes the time, for a network of one's own or for tuning a kernel. Off unless asked:
//! then every command of a submission is timed with the wall clock, one after the other (they run in
//! order; a command's parallel work is inside its time).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What one kind of operation (same kernel, and for products, activations, the fused output layer and
/// the LSTM's passes the same shape) took over the profiled submissions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpTime {
    /// The operation, with its shape for products, activations, the fused output layer and the LSTM's
    /// passes, e.g. `matrix product 512x2550x784` (m x n x k, then `x B` batch members and `+=` when it
    /// accumulates); the others by name alone (`convolution`, `pooling`, `loss head`).
    pub op: String,
    pub calls: usize,
    /// Wall-clock seconds, all calls together.
    pub seconds: f64,
    /// Floating-point operations, all calls together (2 m n k B for a product; 0 where not counted).
    pub flops: f64,
}

/// The profile being gathered, when one is.
#[derive(Default)]
pub(super) struct Profiler {
    on: AtomicBool,
    ops: Mutex<BTreeMap<String, OpTime>>,
}

impl Profiler {
    pub(super) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Starts (or stops) timing commands, forgetting what was gathered before.
    pub(super) fn set(&self, on: bool) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.on.store(on, Ordering::Relaxed);
    }

    /// Adds one call of `op` (`flops` of work) that took `time`.
    pub(super) fn add(&self, op: &str, flops: f64, time: Duration) {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let entry = ops.entry(op.to_string()).or_insert_with(|| OpTime {
            op: op.to_string(),
            calls: 0,
            seconds: 0.0,
            flops: 0.0,
        });
        entry.calls += 1;
        entry.seconds += time.as_secs_f64();
        entry.flops += flops;
    }

    /// What was gathered since [`Profiler::set`], the longest first (ties by name).
    pub(super) fn take(&self) -> Vec<OpTime> {
        let ops = std::mem::take(&mut *self.ops.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out: Vec<OpTime> = ops.into_values().collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then_with(|| a.op.cmp(&b.op)));
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::Cpu;
    use crate::ops::{Act, Activations, Layout, Memory, Product, Products, Source};

    /// A profile names each operation with its shape, counts its calls and a product's FLOPs, gathers
    /// nothing while off, and starts afresh once taken.
    #[test]
    fn a_profile_counts_each_operation_and_shape_while_on() {
        let cpu = Cpu::new();
        let (m, n, k) = (3, 4, 5);
        let a = cpu.upload(&vec![1.0f32; m * k], "a").unwrap();
        let b = cpu.upload(&vec![2.0f32; k * n], "b").unwrap();
        let c = cpu.zeros(m * n, "c").unwrap();
        let p = Product { m, n, k, batches: 1, accumulate: true };
        let (al, bl, cl) = (Layout::row_major(0, k, 0), Layout::row_major(0, n, 0), Layout::row_major(0, n, 0));
        let product = cpu.matmul(p, (Source::F32(&a), al), (Source::F32(&b), bl), (&c, cl)).unwrap();
        let d = cpu.zeros(m * n, "d").unwrap();
        let softplus = cpu.activation(Act::Softplus, false, &c, &d, m * n).unwrap();
        cpu.submit(&[&product]);
        assert!(cpu.take_profile().is_empty(), "nothing is gathered while off");
        cpu.profile(true);
        for _ in 0..2 {
            cpu.submit(&[&product, &softplus]);
        }
        let ops = cpu.take_profile();
        let names: Vec<&str> = ops.iter().map(|o| o.op.as_str()).collect();
        let product_op = ops.iter().find(|o| o.op == "matrix product 3x4x5 +=").unwrap_or_else(|| panic!("{names:?}"));
        assert_eq!((product_op.calls, product_op.flops), (2, 2.0 * 2.0 * (m * n * k) as f64));
        let act = ops.iter().find(|o| o.op == "activation Softplus of 12").unwrap_or_else(|| panic!("{names:?}"));
        assert_eq!((act.calls, act.flops), (2, 0.0));
        assert!(ops.iter().all(|o| o.seconds >= 0.0) && ops.len() == 2, "{ops:?}");
        assert!(ops.windows(2).all(|w| w[0].seconds >= w[1].seconds), "the longest first: {ops:?}");
        assert!(cpu.take_profile().is_empty(), "taken: a fresh start");
        cpu.profile(false);
        cpu.submit(&[&product]);
        assert!(cpu.take_profile().is_empty());
        // the product ran all four times: C accumulated 4 x (k x 1 x 2)
        assert_eq!(cpu.read::<f32>(&c, 0, 1).unwrap(), [4.0 * 2.0 * k as f32]);
    }
}
