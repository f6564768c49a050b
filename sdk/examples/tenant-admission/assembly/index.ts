/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * Tenant admission policy: a tenant over its tokens-per-minute cap is refused (retry when the
 * window frees up); within it, work is interactive during business hours and batch outside them.
 */
import {
  AdmissionDecision,
  AdmissionSnapshot,
  RefusalCode,
  hourOf,
  registerAdmission,
  weekdayOf,
} from '../../../assembly/index';

export { llorch_abi_version, llorch_alloc, llorch_decide } from '../../../assembly/index';

function decide(s: AdmissionSnapshot): AdmissionDecision {
  const caps = s.params.getObject('tokens_per_minute');
  const cap = caps.has(s.tenant.id) ? caps.getNumber(s.tenant.id) : caps.getNumber('*', -1);
  const tokens = s.task.prompt_tokens + s.task.max_tokens;
  if (cap >= 0 && s.tenant.tokens_last_minute + tokens > cap)
    return AdmissionDecision.refuse(
      RefusalCode.ADMISSION_REJECT,
      "tenant '" +
        s.tenant.id +
        "' is over its cap of " +
        (<i64>cap).toString() +
        ' tokens per minute (' +
        (<i64>s.tenant.tokens_last_minute).toString() +
        ' used, ' +
        (<i64>tokens).toString() +
        ' asked)',
      60_000,
    );
  const hours = s.params.get('business_hours');
  if (hours == null) return AdmissionDecision.accept();
  const h = hours.asObject();
  if (h == null) return AdmissionDecision.accept();
  const offset = h.getNumber('utc_offset_minutes', 0);
  const hour = hourOf(s.now_ms, offset);
  const day = weekdayOf(s.now_ms, offset);
  const workday = !h.getBool('weekdays_only', false) || (day >= 1 && day <= 5);
  const inHours = workday && hour >= <i32>h.getNumber('start_hour') && hour < <i32>h.getNumber('end_hour');
  const wanted = inHours ? 'interactive' : 'batch';
  if (wanted == s.task.priority || !s.bounds.allowsPriority(wanted)) return AdmissionDecision.accept();
  return AdmissionDecision.adjust(wanted);
}

registerAdmission(decide);
