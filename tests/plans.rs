//! Every network's plan, without a device: operation counts, shapes and FLOPs as the architecture
//! implies them.

use losscape::model::{Arch, Network};
use losscape::ops::plan::{LstmForward, MatMul, Op, Operand, Plan, WEIGHTS};
use losscape::ops::{Act, Layout, LstmLaunch, Product};

fn plan(arch: Arch, images: usize, batch: usize, chunk: usize) -> Plan {
    Plan::new(Network { arch, act: Act::Softplus }, 0..images, images, batch, chunk, 0).unwrap()
}

fn count(plan: &Plan, grad: bool, kind: &str) -> usize {
    plan.counts(grad).iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
}

#[test]
fn fcp_is_three_products_two_activations_and_a_loss_per_chunk() {
    let (images, b) = (1000, 51);
    let p = plan(Arch::Fcp, images, b, 256);
    assert_eq!(p.chunks.len(), 4, "1000 images in chunks of 256");
    assert_eq!(p.chunks.last().unwrap().images, 1000 - 3 * 256);
    // forward: 3 products, 2 activations, 1 loss; backward: 3 weight gradients, 2 input gradients,
    // 2 activation derivatives
    assert_eq!(p.chunks[0].forward.len(), 6);
    assert_eq!(p.chunks[0].backward.len(), 7);
    assert_eq!(p.count(true), 4 * 13);
    assert_eq!(count(&p, false, "matmul"), 4 * 3);
    // the first layer of all B vectors is one grouped product X [c x 784] * [W_1 | ... | W_B]^T
    match &p.chunks[0].forward[0] {
        Op::MatMul(MatMul { shape, a, b: (operand, layout), .. }) => {
            assert_eq!(*shape, Product { m: 256, n: 50 * b, k: 784, batches: 1, accumulate: false });
            assert_eq!(a.0, Operand::Images);
            assert_eq!(*operand, Operand::Tensor(WEIGHTS));
            assert_eq!(*layout, Layout { off: 0, batch: 0, row: 1, col: 784, group: Some((50, 42200)) });
        }
        other => panic!("the first operation is {other:?}"),
    }
    // forward FLOPs: 2 per multiply-add of 784-50-50-10 for every image and vector
    let forward = 2.0 * (images * b * (784 * 50 + 50 * 50 + 50 * 10)) as f64;
    assert_eq!(p.flops(false), forward);
    // backward: weight gradients of all three layers and input gradients of the upper two
    let backward = 2.0 * (images * b * (784 * 50 + 2 * (50 * 50 + 50 * 10))) as f64;
    assert_eq!(p.flops(true), forward + backward);
}

#[test]
fn lenet_lstm_and_autoencoder_plans_have_the_expected_operations() {
    // LeNet: conv, act, pool, conv, act, pool, then 3 dense layers with biases (3 products, 3 bias
    // products, 2 activations) and the loss
    let p = plan(Arch::Lenet, 100, 3, 64);
    assert_eq!((p.chunks[0].forward.len(), p.chunks[0].backward.len()), (15, 18));
    assert_eq!(count(&p, true, "conv"), 4);
    assert_eq!(count(&p, true, "conv-weight-grad"), 4);
    assert_eq!(count(&p, true, "conv-input-grad"), 2, "conv1's input is the images: no gradient");
    assert_eq!(count(&p, true, "avg-pool"), 4);
    // LSTM: gather, the recurrence, classifier and loss; backward: classifier (2), the recurrence. On
    // a GPU the recurrence launches the input projection of all 28 steps, 28 cells and 27 recurrent
    // products forward, and 28 cells, 27 products, 2 weight and 2 bias gradients backward
    let p = plan(Arch::Lstm, 100, 3, 64);
    assert_eq!((p.chunks[0].forward.len(), p.chunks[0].backward.len()), (4, 3));
    assert_eq!((count(&p, false, "lstm-forward"), count(&p, true, "lstm-backward")), (2, 2));
    assert_eq!(p.dispatches(true), 2 * (59 + 61));
    match &p.chunks[1].forward[1] {
        Op::LstmForward(LstmForward { seq, .. }) => match seq.forward_launches()[0] {
            LstmLaunch::Product { shape, .. } => assert_eq!((shape.m, shape.n, shape.k), (36 * 28, 192 * 3, 28)),
            other => panic!("the input projection is {other:?}"),
        },
        other => panic!("the recurrence is {other:?}"),
    }
    // its FLOPs are its launches' products: 2,137,920 per image and vector, as before the sequence ops
    assert_eq!(p.flops(true), 100.0 * 3.0 * 2_137_920.0);
    // autoencoder: 4 products, 3 activations, the loss; backward 4 + 3 + 3
    let p = plan(Arch::Autoencoder, 100, 3, 100);
    assert_eq!((p.chunks.len(), p.chunks[0].forward.len(), p.chunks[0].backward.len()), (1, 8, 10));
}

#[test]
fn per_vector_plans_and_bad_requests() {
    let net = Network { arch: Arch::Fcp, act: Act::Relu };
    let p = Plan::new(net, 0..64, 64 * 5, 5, 64, 64).unwrap();
    assert_eq!(p.chunks.len(), 1);
    // each vector reads its own images: the first layer is a product batched over the vectors
    match &p.chunks[0].forward[0] {
        Op::MatMul(MatMul { shape, a, .. }) => {
            assert_eq!(shape.batches, 5);
            assert_eq!(a.1.batch, 64 * 784);
        }
        other => panic!("{other:?}"),
    }
    assert!(Plan::new(net, 0..64, 64 * 4, 5, 64, 64).is_err(), "too few images for 5 x 64");
    assert!(Plan::new(net, 0..0, 10, 1, 64, 0).is_err(), "empty range");
    assert!(Plan::new(net, 0..10, 10, 0, 64, 0).is_err(), "no vectors");
    // the plan prints
    let text = plan(Arch::Fcp, 10, 2, 64).to_string();
    assert!(text.contains("tensors:") && text.contains("MatMul") && text.contains("Loss"), "{text}");
}
