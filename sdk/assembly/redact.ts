/**
 * Redaction for what a plugin writes back (refusal messages end up in clients' error envelopes
 * and in logs): e-mail addresses, secret-looking tokens and long digit runs, masked in place.
 * Plain scanning, no regular expressions (AssemblyScript has none), linear in the text.
 */

function isAlnum(c: i32): bool {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isLocalChar(c: i32): bool {
  // RFC 5322 atext minus the rarely used ones: letters, digits and . _ % + -
  return isAlnum(c) || c == 46 || c == 95 || c == 37 || c == 43 || c == 45;
}

function isDomainChar(c: i32): bool {
  return isAlnum(c) || c == 46 || c == 45;
}

function isTokenChar(c: i32): bool {
  return isAlnum(c) || c == 95 || c == 45;
}

/** Replaces every e-mail address (`local@domain.tld`) with `mask`. */
export function redactEmails(text: string, mask: string = '[email]'): string {
  let out = '';
  let copied = 0;
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    if (at < copied) continue;
    let start = at;
    while (start > copied && isLocalChar(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    let dot = -1;
    while (end < text.length && isDomainChar(text.charCodeAt(end))) {
      if (text.charCodeAt(end) == 46) dot = end;
      end++;
    }
    // A trailing dot ends the sentence, not the domain.
    while (end > at + 1 && text.charCodeAt(end - 1) == 46) end--;
    if (dot >= end - 1) dot = text.lastIndexOf('.', end - 2);
    if (start == at || dot <= at + 1 || end - dot < 3) continue;
    out += text.substring(copied, start) + mask;
    copied = end;
  }
  return out + text.substring(copied);
}

/**
 * Replaces tokens that start with one of `prefixes` (API keys: `sk-`, `ghp_`, `xoxb-`, `AKIA` …)
 * and run on for at least `minLength` characters in all, with `mask`.
 */
export function redactSecrets(
  text: string,
  prefixes: string[] = ['sk-', 'ghp_', 'gho_', 'xoxb-', 'xoxp-', 'AKIA', 'hf_'],
  minLength: i32 = 16,
  mask: string = '[secret]',
): string {
  let out = '';
  let i = 0;
  let copied = 0;
  while (i < text.length) {
    const boundary = i == 0 || !isTokenChar(text.charCodeAt(i - 1));
    let matched = false;
    if (boundary)
      for (let p = 0; p < prefixes.length; p++) {
        const prefix = prefixes[p];
        if (prefix.length == 0 || !text.startsWith(prefix, i)) continue;
        let end = i + prefix.length;
        while (end < text.length && isTokenChar(text.charCodeAt(end))) end++;
        if (end - i >= minLength) {
          out += text.substring(copied, i) + mask;
          copied = end;
          i = end;
          matched = true;
        }
        break;
      }
    if (!matched) i++;
  }
  return out + text.substring(copied);
}

/** Replaces runs of at least `minRun` digits (spaces and dashes between them allowed) with `mask`. */
export function redactDigits(text: string, minRun: i32 = 8, mask: string = '[number]'): string {
  let out = '';
  let copied = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) {
      i++;
      continue;
    }
    let end = i;
    let digits = 0;
    let lastDigit = i;
    while (end < text.length) {
      const d = text.charCodeAt(end);
      if (d >= 48 && d <= 57) {
        digits++;
        lastDigit = end;
      } else if (d != 32 && d != 45) break;
      end++;
    }
    if (digits >= minRun) {
      out += text.substring(copied, i) + mask;
      copied = lastDigit + 1;
    }
    i = lastDigit + 1;
  }
  return out + text.substring(copied);
}

/** All three, for text that may hold anything a client sent. */
export function redact(text: string): string {
  return redactDigits(redactSecrets(redactEmails(text)));
}
