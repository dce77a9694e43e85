//! The printed result.

use super::measure::{Measured, pattern};
use super::{LogFile, TARGET_RATIO, mb};

fn mb_per_s(bytes: u64, run: &Measured) -> f64 {
    mb(bytes) / run.best.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn table(
    small: &LogFile,
    small_run: &Measured,
    large: &LogFile,
    large_run: &Measured,
    grep_c: &Measured,
    grep_default: Option<&Measured>,
) {
    let p = "replay_throughput:";
    let large_mb = large.summary.bytes;
    let otarig_speed = mb_per_s(large_mb, large_run);
    let grep_speed = mb_per_s(large_mb, grep_c);
    let ratio = otarig_speed / grep_speed;

    println!("{p} grep pattern: {}", pattern());
    println!("{p} best of {} runs each, warm page cache, MB = 10^6 bytes", super::RUNS);
    println!(
        "{p} {:>8} | {:>11} | {:>15} | {:>11} | {:>13} | {:>11}",
        "size MB", "otarig MB/s", "otarig RSS MiB", "grep MB/s", "grep RSS MiB", "otarig/grep"
    );
    println!(
        "{p} {:>8.1} | {:>11.1} | {:>15.1} | {:>11} | {:>13} | {:>11}",
        mb(small.summary.bytes),
        mb_per_s(small.summary.bytes, small_run),
        mib(small_run.max_rss_kib),
        "-",
        "-",
        "-"
    );
    println!(
        "{p} {:>8.1} | {:>11.1} | {:>15.1} | {:>11.1} | {:>13.1} | {:>11.3}",
        mb(large_mb),
        otarig_speed,
        mib(large_run.max_rss_kib),
        grep_speed,
        mib(grep_c.max_rss_kib),
        ratio
    );
    println!(
        "{p} times: otarig {:.3} s (small), {:.3} s (large); grep LC_ALL=C {:.3} s, {} matching lines",
        small_run.best.as_secs_f64(),
        large_run.best.as_secs_f64(),
        grep_c.best.as_secs_f64(),
        grep_c.count.unwrap_or_default()
    );
    match grep_default {
        Some(run) => println!(
            "{p} grep in the default locale ({}): {:.1} MB/s ({:.3} s), otarig/grep {:.3}",
            run.locale.as_deref().unwrap_or("?"),
            mb_per_s(large_mb, run),
            run.best.as_secs_f64(),
            otarig_speed / mb_per_s(large_mb, run)
        ),
        None => println!("{p} the default locale is C: no separate grep run"),
    }
    let growth = mib(large_run.max_rss_kib) - mib(small_run.max_rss_kib);
    println!(
        "{p} memory: peak RSS {:.1} MiB at {:.0} MB vs {:.1} MiB at {:.0} MB \
         ({growth:+.1} MiB for {:.0}x the input)",
        mib(large_run.max_rss_kib),
        mb(large_mb),
        mib(small_run.max_rss_kib),
        mb(small.summary.bytes),
        large_mb as f64 / small.summary.bytes as f64
    );
    println!(
        "{p} correctness: lines, attempts_total ({} and {}) and every kept attempt's outcome \
         match the generator",
        small.summary.attempts, large.summary.attempts
    );
    let verdict = if ratio >= TARGET_RATIO { "HOLDS" } else { "DOES NOT HOLD" };
    println!(
        "{p} target otarig >= 1/4 of grep -cE speed (LC_ALL=C): {verdict} \
         (ratio {ratio:.3}, need >= {TARGET_RATIO})"
    );
}
