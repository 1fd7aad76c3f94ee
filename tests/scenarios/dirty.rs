//! MMIO2 dirty tracking: temp-off marks a page dirty, `reset_mmio2_with_bitmap` harvests the
//! dirty pages into a caller's bitmap and re-arms them.

use pgmsim::{Error, HandlerKind, HandlerState as S, ManagerConfig, PlatformEvent, ShadowUpdate, Status};
use pgmsim_testkit::render;
use pgmsim_testkit::{ApiCall, Outcome, RecordingPlatform};

use crate::common::upd;
use crate::harness::{reg, reg_as, Call, Scenario};
use crate::{dirty_world, K, MMIO2_BASE};

const FLUSH: PlatformEvent = PlatformEvent::FlushAllTlbs;
/// A pattern every word of a bitmap starts with, where the rendering does not show it, so a
/// stray clear shows.
const PATTERN: u64 = 0x8000_0000_0000_0001;

fn temp_off(addr: u64, page: u64) -> ApiCall {
    ApiCall::PageTempOff { addr, page }
}

/// `reset_mmio2_with_bitmap` with a bitmap of `words` words, each `fill`.
fn harvest(addr: u64, words: u32, offset: u32, fill: u64) -> ApiCall {
    ApiCall::ResetMmio2WithBitmap {
        addr,
        words,
        offset,
        fill,
    }
}

/// The bitmap a harvest left.
fn bitmap_of(outcome: &Outcome) -> Vec<u64> {
    match outcome {
        Outcome::Bitmap(_, bits) => bits.clone(),
        other => panic!("not a harvest: {other:?}"),
    }
}

#[test]
fn dirty_tracking_harvest_with_bitmap() {
    let title = "MMIO2 dirty tracking above 4 GiB: temp-off marks dirty, harvest re-arms";
    let mut sc = Scenario::new(title, dirty_world(8));
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    let text = "register Write over the whole MMIO2 mapping";
    sc.ok(
        text,
        Status::Success,
        reg_as(MMIO2_BASE, MMIO2_BASE + 8 * K - 1, w, 0, "vram"),
    );
    for page in [1u64, 3, 4] {
        let text = format!("guest writes page {page}: temp-off (dirty)");
        sc.ok(&text, Status::Success, temp_off(MMIO2_BASE, MMIO2_BASE + page * K));
    }
    // Bit 63 is the caller's: it stays as it was (and the 16 bits shown do not show it).
    let outcome = sc.step(
        "harvest: reset_mmio2_with_bitmap offset 0",
        harvest(MMIO2_BASE, 1, 0, 1 << 63),
    );
    assert_eq!(outcome, Outcome::Bitmap(Ok(Status::Success), vec![1 << 63 | 0b1_1010]));
    let re_armed = [1, 3, 4].map(|p| upd(MMIO2_BASE + p * K, S::Write, false));
    sc.expect_events(&[&re_armed[..], &[FLUSH]].concat());
    sc.note(format!(
        "bitmap after harvest (offset 0):\n{}",
        render::bitmap(&bitmap_of(&outcome), 16)
    ));
    let outcome = sc.step("harvest again with nothing dirty", harvest(MMIO2_BASE, 1, 0, 1 << 63));
    assert_eq!(outcome, Outcome::Bitmap(Ok(Status::Success), vec![1 << 63]));
    sc.expect_events(&[]);
    sc.note(format!(
        "bitmap after harvest (offset 0):\n{}",
        render::bitmap(&bitmap_of(&outcome), 16)
    ));
    sc.ok(
        "guest writes page 7: temp-off (dirty)",
        Status::Success,
        temp_off(MMIO2_BASE, MMIO2_BASE + 7 * K),
    );
    sc.ok(
        "guest writes page 0: temp-off (dirty)",
        Status::Success,
        temp_off(MMIO2_BASE, MMIO2_BASE),
    );
    let text = "harvest: reset_mmio2_with_bitmap offset 60 (bits cross a word)";
    let outcome = sc.step(text, harvest(MMIO2_BASE, 2, 60, 0));
    assert_eq!(outcome, Outcome::Bitmap(Ok(Status::Success), vec![1 << 60, 1 << 3]));
    sc.note(format!(
        "bitmap after harvest (offset 60):\n{}",
        render::bitmap(&bitmap_of(&outcome), 72)
    ));
    sc.snapshot("dirty_tracking_harvest_with_bitmap");
    harvest_bounds(&mut sc);
}

/// The bitmap's bounds and the handler's kind, on the world of
/// [`dirty_tracking_harvest_with_bitmap`]: an empty bitmap, or one bit short, is refused and
/// left as it was; exactly enough bits at an offset crossing a word set one bit per re-armed
/// page and leave every other bit alone; an All handler is the wrong type.
fn harvest_bounds(sc: &mut Scenario) {
    sc.ok(
        "dirty page 2",
        Status::Success,
        temp_off(MMIO2_BASE, MMIO2_BASE + 2 * K),
    );
    sc.ok(
        "dirty page 5",
        Status::Success,
        temp_off(MMIO2_BASE, MMIO2_BASE + 0x5fff),
    );
    assert_eq!(sc.hs(MMIO2_BASE + 5 * K), S::Disabled);
    let outcome = sc.step("harvest into no bitmap", harvest(MMIO2_BASE, 0, 0, PATTERN));
    assert_eq!(outcome, Outcome::Bitmap(Err(Error::InvalidParameter), vec![]));
    let outcome = sc.step(
        "harvest 8 pages at offset 57 into 64 bits",
        harvest(MMIO2_BASE, 1, 57, PATTERN),
    );
    assert_eq!(outcome, Outcome::Bitmap(Err(Error::InvalidParameter), vec![PATTERN]));
    let outcome = sc.step(
        "harvest at offset 60 into 128 bits",
        harvest(MMIO2_BASE, 2, 60, PATTERN),
    );
    assert_eq!(
        outcome,
        Outcome::Bitmap(Ok(Status::Success), vec![PATTERN | 1 << 62, PATTERN | 1 << 1])
    );
    sc.expect_events(&[
        upd(MMIO2_BASE + 2 * K, S::Write, false),
        upd(MMIO2_BASE + 5 * K, S::Write, false),
        FLUSH,
    ]);
    let outcome = sc.step("nothing dirty", harvest(MMIO2_BASE, 1, 3, PATTERN));
    assert_eq!(outcome, Outcome::Bitmap(Ok(Status::Success), vec![PATTERN]));
    let all = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register All 0x1000..=0x1fff",
        Status::Success,
        reg(0x1000, 0x1fff, all, 0),
    );
    let outcome = sc.step("harvest the All handler", harvest(0x1000, 1, 0, PATTERN));
    assert_eq!(outcome, Outcome::Bitmap(Err(Error::WrongType), vec![PATTERN]));
}

/// Two Write handlers over the two halves (`chunk` pages each) of one MMIO2 region, each
/// harvested at its own offset into one shared bitmap: the second harvest keeps the first's
/// bits, and the bits are the region's dirty page numbers.
fn two_chunks_share_one_bitmap(chunk: u64, dirty: [u64; 3]) -> Scenario {
    let title = format!("two dirty-tracked chunks of one MMIO2 region share a bitmap at offsets 0 and {chunk}");
    let mut sc = Scenario::new(&title, dirty_world(2 * chunk as u32));
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    let (c0, c1) = (MMIO2_BASE, MMIO2_BASE + chunk * K);
    let text = format!("register chunk 0: pages 0-{}", chunk - 1);
    sc.ok(&text, Status::Success, reg_as(c0, c1 - 1, w, 0, "chunk0"));
    let text = format!("register chunk 1: pages {chunk}-{}", 2 * chunk - 1);
    sc.ok(&text, Status::Success, reg_as(c1, c1 + chunk * K - 1, w, 1, "chunk1"));
    for page in dirty {
        let (text, start) = match page < chunk {
            true => (format!("dirty page {page} (chunk 0)"), c0),
            false => (format!("dirty page {page} (chunk 1, its page {})", page - chunk), c1),
        };
        sc.ok(&text, Status::Success, temp_off(start, MMIO2_BASE + page * K));
    }
    let words = (2 * chunk).div_ceil(64) as usize;
    let first = Call::Bitmap {
        addr: c0,
        bitmap: vec![0; words],
        offset: 0,
    };
    let bitmap = bitmap_of(&sc.step("harvest chunk 0 at offset 0", first));
    let second = Call::Bitmap {
        addr: c1,
        bitmap,
        offset: chunk as u32,
    };
    let bitmap = bitmap_of(&sc.step(&format!("harvest chunk 1 at offset {chunk}"), second));
    let mut want = vec![0u64; words];
    for p in dirty {
        want[(p / 64) as usize] |= 1 << (p % 64);
    }
    assert_eq!(bitmap, want);
    sc.note(format!(
        "shared bitmap after both harvests:\n{}",
        render::bitmap(&bitmap, 2 * chunk as usize)
    ));
    sc
}

#[test]
fn dirty_tracking_two_chunks_share_one_bitmap() {
    two_chunks_share_one_bitmap(4, [2, 4, 7]).snapshot("dirty_tracking_two_chunks_share_one_bitmap");
    // 50-page chunks: the second chunk's bits cross into the second word.
    two_chunks_share_one_bitmap(50, [49, 50, 99]);
}

#[test]
fn dirty_tracking_failures_and_resync() {
    let mut platform = RecordingPlatform::mapped();
    platform.answer = ShadowUpdate {
        flush_tlbs: true,
        resync: true,
    };
    let title = "bitmap reset failures change nothing; a platform resync gives GcPhysAliased / SyncCr3";
    let mut sc = Scenario::with(title, dirty_world(4), ManagerConfig::default(), platform);
    sc.note("platform answers every PTE update with flush_tlbs + resync (reverse map overflowed)");
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    let a = sc.ty(HandlerKind::All, false, "all");
    let text = "register Write over MMIO2 (resync: GcPhysAliased)";
    sc.ok(
        text,
        Status::GcPhysAliased,
        reg(MMIO2_BASE, MMIO2_BASE + 4 * K - 1, w, 0),
    );
    let text = "register All 0x1000..=0x1fff (resync: GcPhysAliased)";
    sc.ok(text, Status::GcPhysAliased, reg(0x1000, 0x1fff, a, 0));
    sc.ok("dirty page 1", Status::Success, temp_off(MMIO2_BASE, MMIO2_BASE + K));
    // Every failed harvest leaves the bitmap as it was (the harness proves it).
    let text = "harvest at offset 61 (needs 65 bits, bitmap has 64)";
    sc.fails(text, Error::InvalidParameter, harvest(MMIO2_BASE, 1, 61, 0));
    sc.fails("harvest the All handler", Error::WrongType, harvest(0x1000, 1, 0, 0));
    let text = "harvest via 0x100001000 (inside, not the start)";
    sc.fails(text, Error::NotFound, harvest(MMIO2_BASE + K, 1, 0, 0));
    let text = "harvest at offset 60 (fits exactly; resync: SyncCr3)";
    let outcome = sc.step(text, harvest(MMIO2_BASE, 1, 60, 0));
    assert_eq!(outcome, Outcome::Bitmap(Ok(Status::SyncCr3), vec![1 << 61]));
    sc.note(format!("bitmap:\n{}", render::bitmap(&bitmap_of(&outcome), 64)));
    sc.snapshot("dirty_tracking_failures_and_resync");
}

/// Eleven dirty pages of a 100-page region above 4 GiB, harvested at an offset that is no
/// multiple of 64: exactly their bits are set across three words, a bit the caller owns
/// stays, exactly those pages get a PTE update (in page order) and one TLB flush follows; a
/// second harvest finds nothing.
#[test]
fn harvest_sets_exactly_the_re_armed_bits_across_words() {
    let mut sc = Scenario::new("100-page harvest at offset 37", dirty_world(100));
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok(
        "register all 100 pages",
        Status::Success,
        reg(MMIO2_BASE, MMIO2_BASE + 100 * K - 1, w, 0),
    );
    let dirty = [0u64, 1, 5, 26, 27, 28, 60, 63, 64, 90, 99];
    for p in dirty {
        sc.ok(
            "temp-off",
            Status::Success,
            temp_off(MMIO2_BASE, MMIO2_BASE + p * K + 0x123),
        );
    }
    assert_eq!(sc.handler(MMIO2_BASE).temp_off_pages, dirty.len() as u32);
    let offset = 37u32;
    let call = Call::Bitmap {
        addr: MMIO2_BASE,
        bitmap: vec![0, 0, 1 << 63],
        offset,
    };
    let bitmap = bitmap_of(&sc.step("harvest", call));
    let mut want = vec![0u64, 0, 1 << 63];
    for bit in dirty.map(|p| offset as u64 + p) {
        want[(bit / 64) as usize] |= 1 << (bit % 64);
    }
    assert_eq!(bitmap, want);
    assert!((0..100).all(|p| sc.hs(MMIO2_BASE + p * K) == S::Write));
    let updated: Vec<u64> = sc
        .events()
        .iter()
        .filter_map(|e| match e {
            PlatformEvent::UpdateShadowPtes { gc_phys, .. } => Some((gc_phys.raw() - MMIO2_BASE) / K),
            _ => None,
        })
        .collect();
    assert_eq!(updated, dirty);
    assert_eq!(sc.events().last(), Some(&FLUSH));
    let again = sc.step("harvest again", harvest(MMIO2_BASE, 3, offset, 0));
    assert_eq!(again, Outcome::Bitmap(Ok(Status::Success), vec![0, 0, 0]));
}
