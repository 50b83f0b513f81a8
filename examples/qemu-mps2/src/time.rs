//! An embassy-time driver on the Cortex-M SysTick: a 1 kHz tick (embassy-time's
//! `tick-hz-1_000`) counts time, and each tick wakes the timers that expired.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// mps2-an386 runs the core at 25 MHz (ARM AN386, QEMU's model alike).
pub const CORE_CLOCK_HZ: u32 = 25_000_000;

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            // Expired timers are woken on the next tick (at most 1 ms late).
            self.queue.borrow(cs).borrow_mut().schedule_wake(at, waker);
        });
    }
}

/// Core clock cycles per tick (SysTick reloads at this count).
const CYCLES_PER_TICK: u32 = CORE_CLOCK_HZ / 1_000;

/// Core clock cycles since [`init`], as SysTick counts them: whole ticks plus the cycles
/// of the current one (SysTick counts down from its reload value). For timing code;
/// QEMU's SysTick runs on its virtual clock, so under `-icount shift=0` (1 ns of virtual
/// time per instruction) a cycle here is 40 instructions' worth of virtual time.
pub fn cycles() -> u64 {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs).get();
        // A tick whose interrupt is still pending (interrupts are off here) is not in
        // `ticks` yet: count it when the wrap happened before the counter was read, and
        // read again when it happened in between (at most once more: a tick is 25 000
        // cycles, far longer than these three reads).
        let mut value = 0;
        for _ in 0..3 {
            let before = cortex_m::peripheral::SCB::is_pendst_pending();
            let current = SYST::get_current();
            let whole = ticks + u64::from(before);
            value = whole * u64::from(CYCLES_PER_TICK)
                + u64::from(CYCLES_PER_TICK - 1 - current.min(CYCLES_PER_TICK - 1));
            if cortex_m::peripheral::SCB::is_pendst_pending() == before {
                break;
            }
        }
        value
    })
}

/// Starts the 1 kHz tick.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_TICK - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let t = DRIVER.ticks.borrow(cs).get() + 1;
        DRIVER.ticks.borrow(cs).set(t);
        DRIVER.queue.borrow(cs).borrow_mut().next_expiration(t);
    });
}
