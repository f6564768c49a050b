/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * A small JSON reader and writer for plugins: enough for snapshots and decisions, no I/O.
 * Numbers are f64 (exact for integers up to 2^53, which covers `now_ms`).
 */

export const enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JsonValue {
  constructor(public kind: JsonKind) {}

  get isNull(): bool {
    return this.kind == JsonKind.Null;
  }

  /** The value as an object, or null when it is not one. */
  asObject(): JsonObject | null {
    return this.kind == JsonKind.Object ? changetype<JsonObject>(this) : null;
  }

  asArray(): JsonArray | null {
    return this.kind == JsonKind.Array ? changetype<JsonArray>(this) : null;
  }

  /** The number, or `fallback` when the value is not a number. */
  asNumber(fallback: f64 = 0): f64 {
    return this.kind == JsonKind.Number ? changetype<JsonNumber>(this).value : fallback;
  }

  asString(fallback: string = ''): string {
    return this.kind == JsonKind.String ? changetype<JsonString>(this).value : fallback;
  }

  asBool(fallback: bool = false): bool {
    return this.kind == JsonKind.Bool ? changetype<JsonBool>(this).value : fallback;
  }

  /** Serialised JSON text. */
  stringify(): string {
    return 'null';
  }
}

export class JsonBool extends JsonValue {
  constructor(public value: bool) {
    super(JsonKind.Bool);
  }
  stringify(): string {
    return this.value ? 'true' : 'false';
  }
}

export class JsonNumber extends JsonValue {
  constructor(public value: f64) {
    super(JsonKind.Number);
  }
  stringify(): string {
    return formatNumber(this.value);
  }
}

export class JsonString extends JsonValue {
  constructor(public value: string) {
    super(JsonKind.String);
  }
  stringify(): string {
    return quote(this.value);
  }
}

export class JsonArray extends JsonValue {
  items: JsonValue[] = [];
  constructor() {
    super(JsonKind.Array);
  }
  stringify(): string {
    let out = '[';
    for (let i = 0; i < this.items.length; i++) {
      if (i > 0) out += ',';
      out += this.items[i].stringify();
    }
    return out + ']';
  }
}

export class JsonObject extends JsonValue {
  keys: string[] = [];
  values: Map<string, JsonValue> = new Map<string, JsonValue>();
  constructor() {
    super(JsonKind.Object);
  }

  has(key: string): bool {
    return this.values.has(key);
  }

  get(key: string): JsonValue | null {
    return this.values.has(key) ? this.values.get(key) : null;
  }

  set(key: string, value: JsonValue): JsonObject {
    if (!this.values.has(key)) this.keys.push(key);
    this.values.set(key, value);
    return this;
  }

  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v == null ? fallback : v.asNumber(fallback);
  }

  getString(key: string, fallback: string = ''): string {
    const v = this.get(key);
    return v == null ? fallback : v.asString(fallback);
  }

  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v == null ? fallback : v.asBool(fallback);
  }

  /** The member array, or an empty array when absent or not an array. */
  getArray(key: string): JsonArray {
    const v = this.get(key);
    if (v == null) return new JsonArray();
    const a = v.asArray();
    return a == null ? new JsonArray() : a;
  }

  /** The member array's strings (other items skipped), or none. */
  getStrings(key: string): string[] {
    const out: string[] = [];
    const items = this.getArray(key).items;
    for (let i = 0; i < items.length; i++)
      if (items[i].kind == JsonKind.String) out.push(items[i].asString());
    return out;
  }

  /** The member object, or an empty object when absent or not an object. */
  getObject(key: string): JsonObject {
    const v = this.get(key);
    if (v == null) return new JsonObject();
    const o = v.asObject();
    return o == null ? new JsonObject() : o;
  }

  stringify(): string {
    let out = '{';
    for (let i = 0; i < this.keys.length; i++) {
      if (i > 0) out += ',';
      const k = this.keys[i];
      out += quote(k) + ':' + this.values.get(k).stringify();
    }
    return out + '}';
  }
}

/** A JSON number as text: integers without a fraction, others with f64's shortest form. */
export function formatNumber(v: f64): string {
  if (!isFinite(v)) return 'null';
  if (v == Math.floor(v) && Math.abs(v) < 9007199254740992) return (<i64>v).toString();
  return v.toString();
}

/** A JSON string literal. */
export function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += '\\\\';
    else if (c == 0x0a) out += '\\n';
    else if (c == 0x0d) out += '\\r';
    else if (c == 0x09) out += '\\t';
    else if (c < 0x20) {
      const hex = c.toString(16);
      out += '\\u' + '0000'.substring(hex.length) + hex;
    } else out += String.fromCharCode(c);
  }
  return out + '"';
}

class Parser {
  pos: i32 = 0;
  failed: bool = false;
  constructor(public s: string) {}

  ws(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  fail(): JsonValue {
    this.failed = true;
    return new JsonValue(JsonKind.Null);
  }

  value(): JsonValue {
    this.ws();
    if (this.pos >= this.s.length) return this.fail();
    const c = this.s.charCodeAt(this.pos);
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == 0x22) {
      const str = this.string();
      return this.failed ? this.fail() : new JsonString(str);
    }
    if (this.s.startsWith('true', this.pos)) {
      this.pos += 4;
      return new JsonBool(true);
    }
    if (this.s.startsWith('false', this.pos)) {
      this.pos += 5;
      return new JsonBool(false);
    }
    if (this.s.startsWith('null', this.pos)) {
      this.pos += 4;
      return new JsonValue(JsonKind.Null);
    }
    return this.number();
  }

  number(): JsonValue {
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45)
        this.pos++;
      else break;
    }
    if (this.pos == start) return this.fail();
    return new JsonNumber(parseFloat(this.s.substring(start, this.pos)));
  }

  string(): string {
    this.pos++; // opening quote
    let out = '';
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x22) return out;
      if (c != 0x5c) {
        out += String.fromCharCode(c);
        continue;
      }
      if (this.pos >= this.s.length) break;
      const e = this.s.charCodeAt(this.pos++);
      if (e == 0x6e) out += '\n';
      else if (e == 0x74) out += '\t';
      else if (e == 0x72) out += '\r';
      else if (e == 0x62) out += '\b';
      else if (e == 0x66) out += '\f';
      else if (e == 0x75) {
        if (this.pos + 4 > this.s.length) break;
        out += String.fromCharCode(<i32>parseInt(this.s.substring(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else out += String.fromCharCode(e);
    }
    this.failed = true;
    return out;
  }

  array(): JsonValue {
    this.pos++;
    const a = new JsonArray();
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return a;
    }
    while (!this.failed) {
      a.items.push(this.value());
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x5d) return a;
      if (c != 0x2c) return this.fail();
    }
    return this.fail();
  }

  object(): JsonValue {
    this.pos++;
    const o = new JsonObject();
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return o;
    }
    while (!this.failed) {
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x22) return this.fail();
      const key = this.string();
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos++) != 0x3a) return this.fail();
      o.set(key, this.value());
      this.ws();
      if (this.pos >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x7d) return o;
      if (c != 0x2c) return this.fail();
    }
    return this.fail();
  }
}

/** Parses JSON text; null when it is not valid JSON. */
export function parseJson(text: string): JsonValue | null {
  const p = new Parser(text);
  const v = p.value();
  p.ws();
  if (p.failed || p.pos != text.length) return null;
  return v;
}
