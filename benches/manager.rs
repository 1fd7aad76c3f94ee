//! Benchmarks of the production manager's hot paths.
//!
//! Targets: lookup <= 25 ns with 4096 handlers; register + deregister of a 1-page handler
//! <= 200 ns; `check_sync` <= 1 ns per page on a 4 GiB guest with 1000 handlers.
//!
//! Run: `cargo bench --bench manager -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pgmsim::{HandlerKind, HandlerTypeConfig, Manager, MemoryLayout, Status};

/// Deterministic xorshift64*, so every run measures the same addresses.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A manager with `n` handlers of 1-2 pages (some sub-page), spread with gaps over RAM.
fn with_handlers(n: u32) -> (Manager, Vec<(u64, u64)>) {
    let pages = n * 4 + 16;
    let layout = MemoryLayout::builder().ram(0, pages).build().unwrap();
    let mut m = Manager::with_layout(layout).unwrap();
    let write = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "w"))
        .unwrap();
    let all = m.register_type(HandlerTypeConfig::new(HandlerKind::All, "a")).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut ranges = Vec::new();
    for i in 0..n as u64 {
        let first = i * 0x4000 + 0x1000;
        let (last, ty) = match rng.next() % 3 {
            0 => (first + 0x1fff, all),
            1 => (first + 0x0fff, write),
            _ => (first + 0x17ff, write),
        };
        assert_eq!(m.register(first, last, ty, i, None), Ok(Status::Success));
        ranges.push((first, last));
    }
    (m, ranges)
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for n in [16u32, 256, 4096] {
        let (m, ranges) = with_handlers(n);
        let mut rng = XorShift(42);
        let addrs: Vec<u64> = (0..4096)
            .map(|_| {
                let (f, l) = ranges[(rng.next() % ranges.len() as u64) as usize];
                f + rng.next() % (l - f + 1)
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("lookup_range", n), &n, |b, _| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(m.lookup_range(black_box(addrs[i])))
            })
        });
        g.bench_with_input(BenchmarkId::new("is_registered", n), &n, |b, _| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(m.is_registered(black_box(addrs[i])))
            })
        });
    }
    g.finish();
}

fn register_deregister(c: &mut Criterion) {
    let mut g = c.benchmark_group("register_deregister");
    for pages in [1u64, 256] {
        let layout = MemoryLayout::builder().ram(0, 1024).build().unwrap();
        let mut m = Manager::with_layout(layout).unwrap();
        let write = m
            .register_type(HandlerTypeConfig::new(HandlerKind::Write, "w"))
            .unwrap();
        // A few neighbours so the tree is not trivially empty.
        for i in 0..16u64 {
            m.register(0x200000 + i * 0x2000, 0x200fff + i * 0x2000, write, 0, None)
                .unwrap();
        }
        let first = 0x10000;
        let last = first + pages * 0x1000 - 1;
        g.bench_with_input(BenchmarkId::new("pages", pages), &pages, |b, _| {
            b.iter(|| {
                black_box(m.register(black_box(first), black_box(last), write, 0, None)).ok();
                black_box(m.deregister(black_box(first))).ok();
            })
        });
    }
    g.finish();
}

fn check_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("check_sync");
    let pages = 1u32 << 20;
    let layout = MemoryLayout::builder().ram(0, pages).build().unwrap();
    let mut m = Manager::with_layout(layout).unwrap();
    let write = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "w"))
        .unwrap();
    let all = m.register_type(HandlerTypeConfig::new(HandlerKind::All, "a")).unwrap();
    for i in 0..1000u64 {
        let first = i * 1000 * 0x1000 + 0x5000;
        let ty = if i % 2 == 0 { write } else { all };
        m.register(first, first + 4 * 0x1000 - 1, ty, 0, None).unwrap();
    }
    assert!(m.check_sync().is_empty());
    g.throughput(Throughput::Elements(pages as u64));
    g.sample_size(20);
    g.bench_function("4GiB_1000_handlers", |b| b.iter(|| black_box(m.check_sync())));
    g.finish();
}

criterion_group!(benches, lookup, register_deregister, check_sync);
criterion_main!(benches);
