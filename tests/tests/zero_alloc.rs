//! The codec does not allocate: parsing and building the typical request and response
//! (the shapes of the codec benchmark) a thousand times leaves the allocation count of
//! the test thread unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use coap_core::{Code, Message, MessageBuilder, MessageType, OptionNumber};

/// Counts allocations (alloc, alloc_zeroed, realloc) made by threads that opted in, so
/// that the test harness's own threads do not disturb the count.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

fn record() {
    if TRACKED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; counting has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const TOKEN: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];
const PAYLOAD: [u8; 64] = [b'x'; 64];

/// CON GET, 8-byte token, two Uri-Path, one Uri-Query.
fn build_request(buf: &mut [u8], mid: u16) -> usize {
    let mut b = MessageBuilder::new(buf, MessageType::Con, Code::GET, mid, &TOKEN).unwrap();
    // Out of order on purpose, to take the builder's insert path too.
    b.option_str(OptionNumber::URI_QUERY, "unit=celsius")
        .unwrap();
    b.option_str(OptionNumber::URI_PATH, "sensors").unwrap();
    b.option_str(OptionNumber::URI_PATH, "temperature").unwrap();
    b.finish()
}

/// Piggybacked ACK 2.05 with Content-Format and a 64-byte payload.
fn build_response(buf: &mut [u8], mid: u16) -> usize {
    let mut b = MessageBuilder::new(buf, MessageType::Ack, Code::CONTENT, mid, &TOKEN).unwrap();
    b.option_uint(OptionNumber::CONTENT_FORMAT, 50).unwrap();
    b.payload(&PAYLOAD).unwrap();
    b.finish()
}

/// Parses the request and response and reads every part of them; returns a checksum so
/// that nothing is optimized away.
fn parse_both(req: &[u8], resp: &[u8]) -> usize {
    let m = Message::parse(req).unwrap();
    assert_eq!(m.code(), Code::GET);
    let mut sum = m.token().len();
    for o in m.options() {
        sum += usize::from(o.number.0) + o.value.len();
        sum += o.as_str().map_or(0, str::len);
    }
    sum += m.uri_path().count() + m.uri_query().count();

    let m = Message::parse(resp).unwrap();
    assert_eq!(m.content_format(), Some(50));
    for o in m.options() {
        sum += o.as_uint().unwrap_or(0) as usize;
    }
    sum + m.payload().len() + usize::from(m.max_age() > 0)
}

fn one_round(i: u16) -> usize {
    let mut req = [0u8; 128];
    let mut resp = [0u8; 128];
    let n = build_request(&mut req, i);
    let k = build_response(&mut resp, i);
    std::hint::black_box(parse_both(&req[..n], &resp[..k]))
}

#[test]
fn parse_and_build_do_not_allocate() {
    // Sanity: the counter does see allocations on this thread.
    TRACKED.with(|t| t.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![0u8; 16]));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    TRACKED.with(|t| t.set(false));
    assert_eq!(after - before, 1, "the counting allocator is not in effect");

    let mut total = 0;
    TRACKED.with(|t| t.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..1000u16 {
        total += one_round(i);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    TRACKED.with(|t| t.set(false));
    assert_eq!(
        after,
        before,
        "{} allocations in 1000 rounds",
        after - before
    );
    assert!(total > 0);
}
