//! Arbitrary bytes as the state a previous process handed over at a restart (the memfd in
//! systemd's file descriptor store), through the decoder and the checks the next process
//! makes before it takes anything from it (`State::decode`, `State::check`), then through
//! what it does with a state it accepts.
//!
//! Invariants checked:
//! - decoding and checking never panic; a state is refused with a reason in words;
//! - a decoded state reads back the same once written again (the same bytes on a second
//!   round: a version 1 state is written as the current version);
//! - a state the checks accept can be used without a panic or an overflow (debug assertions
//!   are on): each budget restored into a token bucket and asked when it is ready, spent and
//!   refilled; each connection's framer restored and fed more bytes and its end; its syslog
//!   header restored; its age, idle time and counters carried on; the next connection id
//!   counted on from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use tcp_listener::config::Config;
use tcp_listener::fdstore::State;
use tcp_listener::framing::{Framer, MIN_PIECE};
use tcp_listener::ratelimit::TokenBucket;
use tcp_listener::syslog_message::Sticky;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = State::decode(data) else {
        return;
    };
    let written = state.encode();
    let again = State::decode(&written).expect("a state it wrote reads back");
    assert_eq!(again.encode(), written, "the same state on a second round");
    // The default configuration, and one with a slow rate and a small burst.
    let slow = Config {
        max_lines_per_sec: 1,
        max_lines_burst: 1,
        max_line_length: 64,
        ..Config::default()
    };
    for config in [Config::default(), slow] {
        if let Err(why) = state.check(&config) {
            assert!(!why.is_empty() && !why.contains("Some(") && !why.contains("Err("));
            continue;
        }
        use_state(&state, &config);
    }
});

/// What the next process does with an accepted state, short of the sockets.
fn use_state(state: &State, config: &Config) {
    let now = Instant::now();
    let (rate, burst) = (config.max_lines_per_sec, config.max_lines_burst);
    for (_, tokens) in &state.budgets {
        let mut bucket = TokenBucket::with_tokens(rate, burst, *tokens, now);
        if let Some(at) = bucket.ready_at(now) {
            assert!(at >= now);
        }
        bucket.take(now);
        let _ = bucket.try_take(now + Duration::from_secs(3600));
        let _ = bucket.is_full(now + Duration::from_secs(86_400));
        bucket.reconfigure(rate.saturating_mul(2), burst, now);
        let _ = bucket.ready_at(now);
    }
    let _ = state.next_id + 1;
    let s = &state.summary;
    let _ = (s.connections + 1, s.lines + 1, s.refused + 1, s.dropped + 1);
    for c in &state.connections {
        let _ = now.checked_sub(c.age).unwrap_or(now);
        let _ = now.checked_sub(c.idle).unwrap_or(now);
        let _ = (c.bytes + (1 << 20), c.lines + 1, c.dropped + 1);
        if let Some(sticky) = &c.sticky {
            let sticky = Sticky::restore(sticky).expect("checked");
            let _ = sticky.continuation(b"more");
        }
        let room = config.max_line_length.saturating_sub(20).max(MIN_PIECE);
        let mut framer = Framer::restore(c.framer.clone(), room).expect("checked");
        framer.reconfigure(config.framing, room);
        framer.push(b"rest of the line\nnext\r\n<13>x\n12 counted\n", |_| {});
        framer.finish(|_| {});
    }
}
