/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/** Calendar helpers over `now_ms` (UTC), for business-hours rules without a clock import. */

const DAY_MS: f64 = 86_400_000;

/** Hour of day 0..23 at `offsetMinutes` from UTC. */
export function hourOf(nowMs: f64, offsetMinutes: f64 = 0): i32 {
  const local = nowMs + offsetMinutes * 60_000;
  const ms = local - Math.floor(local / DAY_MS) * DAY_MS;
  return <i32>Math.floor(ms / 3_600_000);
}

/** Day of week 0 (Sunday) .. 6 (Saturday) at `offsetMinutes` from UTC. */
export function weekdayOf(nowMs: f64, offsetMinutes: f64 = 0): i32 {
  const days = <i64>Math.floor((nowMs + offsetMinutes * 60_000) / DAY_MS);
  // 1970-01-01 was a Thursday.
  return <i32>(((days % 7) + 7 + 4) % 7);
}
