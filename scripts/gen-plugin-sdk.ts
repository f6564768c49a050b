/**
 * Renders the plugin SDK's snapshot classes and contract constants (AssemblyScript, under
 * sdk/assembly/generated/) from the plugin contracts the host validates against
 * (contracts/plugins/*-snapshot.schema.json and *-decision.schema.json), so the SDK cannot drift
 * from them: a schema change without `npm run gen` fails `npm run gen:check`.
 *
 * Schema keywords the generator reads (the host's ajv runs with `strict: false`, which ignores them):
 * - `x-sdk-class` on an object (or on an array's `items`, or on a map's `additionalProperties`)
 *   names its class; without it the class is the owner's name plus the property's in PascalCase.
 *   On a string `enum`/`const` it names a class of constants (one static member per value, the
 *   values of every annotated node of a schema under that name together); unannotated enums get none.
 * - `x-sdk-extend: "<module>"` on an object: sdk/assembly/<module>.ts declares the class as a
 *   subclass of the generated `<Name>Fields` (to add methods); fields of that type use the subclass.
 * - `x-sdk-type: "i32" | "f64"` on a number: its AssemblyScript type. Otherwise integers with a
 *   `const` are i32 and every other number f64 (exact for integers up to 2^53).
 *
 * Optional members: numbers read -1 when absent if the schema bounds them at 0 or above (NaN
 * otherwise) and are written back only when set; strings, arrays and free-form objects are written
 * only when non-empty; booleans only when true; nested classes are null when absent.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import type { GeneratedFile } from './gen.js';

/** A JSON Schema node, as far as the generator reads one. */
export interface SchemaNode {
  readonly $ref?: string;
  readonly type?: string | readonly string[];
  readonly title?: string;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly items?: SchemaNode;
  readonly additionalProperties?: boolean | SchemaNode;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly minimum?: number;
  readonly exclusiveMinimum?: number;
  readonly oneOf?: readonly SchemaNode[];
  readonly anyOf?: readonly SchemaNode[];
  readonly allOf?: readonly SchemaNode[];
  readonly 'x-sdk-class'?: string;
  readonly 'x-sdk-extend'?: string;
  readonly 'x-sdk-type'?: string;
}

/** The output folder, relative to the repository root. */
export const SDK_GENERATED_DIR = 'sdk/assembly/generated';
const CONTRACTS_DIR = 'contracts/plugins';
const SHARED = 'shared';

type FieldType =
  | {
      readonly kind: 'string' | 'f64' | 'i32' | 'bool' | 'strings' | 'numbers' | 'object' | 'array' | 'value';
    }
  | { readonly kind: 'class' | 'classes'; readonly name: string };

interface Field {
  readonly json: string;
  readonly type: FieldType;
  readonly required: boolean;
  /** AssemblyScript literal of the default (and of the "absent" value for optional scalars). */
  readonly initial: string;
  /** Optional numbers: -1 (written when >= 0) or NaN (written when not NaN). */
  readonly sentinel?: 'negative' | 'nan';
  readonly doc: string;
}

interface ClassDef {
  readonly name: string;
  readonly fields: readonly Field[];
  /** The hand-written module (sdk/assembly/<module>.ts) that subclasses `<name>Fields`. */
  readonly extend: string | undefined;
  readonly doc: string;
  readonly shape: string;
  readonly files: Set<string>;
}

interface EnumDef {
  readonly name: string;
  /** Values per schema file (unioned within a file, equal across files). */
  readonly values: Map<string, string[]>;
  readonly doc: string;
}

const JSON_CLASSES = [
  'JsonArray',
  'JsonBool',
  'JsonKind',
  'JsonNumber',
  'JsonObject',
  'JsonString',
  'JsonValue',
];
// AssemblyScript globals a derived class name must not shadow.
const RESERVED = new Set([
  'Array',
  'Error',
  'Map',
  'Set',
  'String',
  'Object',
  'Date',
  'Math',
  'JSON',
  'Function',
]);

const pascal = (s: string): string =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');

const constName = (v: string): string => {
  const n = v
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase();
  return /^[0-9]/.test(n) || n === '' ? `V_${n}` : n;
};

/** An AssemblyScript string literal. */
const lit = (s: string): string =>
  `'${JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;

const isIdentifier = (s: string): boolean => /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s);

function docComment(text: string, indent: string): string[] {
  const clean = text.replace(/\*\//g, '*\\/').replace(/\s+/g, ' ').trim();
  if (clean === '') return [];
  const words = clean.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line.length > 0 && line.length + w.length + 1 > 96 - indent.length) {
      lines.push(line);
      line = w;
    } else line = line.length > 0 ? `${line} ${w}` : w;
  }
  lines.push(line);
  if (lines.length === 1) return [`${indent}/** ${lines[0]!} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`];
}

/** `task`, `replicas[]`, `tools.<key>.error` for a JSON pointer into a schema. */
const readablePath = (pointer: string): string =>
  pointer
    .replace(/\/properties\//g, '.')
    .replace(/\/items/g, '[]')
    .replace(/\/additionalProperties/g, '.<key>')
    .replace(/^\./, '');

/** The generator's state over every schema of one run. */
class Registry {
  readonly classes = new Map<string, ClassDef>();
  readonly enums = new Map<string, EnumDef>();
  /** Per schema file: its classes and enums in the order met. */
  readonly order = new Map<string, string[]>();
  private file = '';
  private doc: SchemaNode = {};

  use(file: string, doc: SchemaNode): void {
    this.file = file;
    this.doc = doc;
    if (!this.order.has(file)) this.order.set(file, []);
  }

  private where(pointer: string): string {
    return `${CONTRACTS_DIR}/${this.file}.schema.json#${pointer}`;
  }

  private note(name: string): void {
    const list = this.order.get(this.file)!;
    if (!list.includes(name)) list.push(name);
  }

  /** Follows a local `$ref` (`#/definitions/…`, `#/$defs/…`). */
  resolve(node: SchemaNode, pointer: string): SchemaNode {
    let n = node;
    for (let hops = 0; n.$ref !== undefined; hops++) {
      const ref = n.$ref;
      if (!ref.startsWith('#/') || hops > 16)
        throw new Error(`${this.where(pointer)}: unsupported $ref ${ref}`);
      let target: unknown = this.doc;
      for (const part of ref.slice(2).split('/')) {
        const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
        target = (target as Record<string, unknown> | undefined)?.[key];
      }
      if (target === undefined || typeof target !== 'object')
        throw new Error(`${this.where(pointer)}: $ref ${ref} resolves to nothing`);
      n = target as SchemaNode;
    }
    return n;
  }

  /** Records the string values of an annotated enum/const node (unannotated ones get no constants). */
  enumOf(node: SchemaNode, pointer: string): void {
    const name = node['x-sdk-class'];
    if (name === undefined) return;
    const values = [
      ...(node.enum ?? []),
      ...(node.const !== undefined ? [node.const] : []),
      ...(node.items?.enum ?? []),
      ...(node.items?.const !== undefined ? [node.items.const] : []),
    ];
    if (values.length === 0 || !values.every((v): v is string => typeof v === 'string'))
      throw new Error(
        `${this.where(pointer)}: x-sdk-class ${name} names constants, but no string enum/const is here`,
      );
    if (!isIdentifier(name)) throw new Error(`${this.where(pointer)}: x-sdk-class ${name} is no identifier`);
    if (this.classes.has(name)) throw new Error(`${this.where(pointer)}: ${name} is a class already`);
    const def = this.enums.get(name) ?? {
      name,
      values: new Map<string, string[]>(),
      doc: node.description ?? '',
    };
    this.enums.set(name, def);
    const mine = def.values.get(this.file) ?? [];
    for (const v of values) if (!mine.includes(v)) mine.push(v);
    def.values.set(this.file, mine);
    this.note(name);
  }

  /** Walks a decision-like schema (no classes): every annotated enum/const, through oneOf/anyOf/allOf. */
  constants(node: SchemaNode, pointer: string, seen = new Set<SchemaNode>()): void {
    const n = this.resolve(node, pointer);
    if (seen.has(n)) return;
    seen.add(n);
    this.enumOf(n, pointer);
    for (const key of ['oneOf', 'anyOf', 'allOf'] as const)
      (n[key] ?? []).forEach((v, i) => this.constants(v, `${pointer}/${key}/${i}`, seen));
    for (const [k, v] of Object.entries(n.properties ?? {}))
      this.constants(v, `${pointer}/properties/${k}`, seen);
    if (n.items) this.constants(n.items, `${pointer}/items`, seen);
    if (typeof n.additionalProperties === 'object')
      this.constants(n.additionalProperties, `${pointer}/additionalProperties`, seen);
  }

  /** Registers the class of an object node with properties; returns its name. */
  classOf(node: SchemaNode, derived: string, pointer: string): string {
    const annotated = node['x-sdk-class'];
    const name = annotated ?? (RESERVED.has(derived) ? `${derived}Info` : derived);
    if (!isIdentifier(name)) throw new Error(`${this.where(pointer)}: class name ${name} is no identifier`);
    if (this.enums.has(name)) throw new Error(`${this.where(pointer)}: ${name} names constants already`);
    const required = new Set(node.required ?? []);
    const fields = Object.entries(node.properties ?? {}).map(([json, child]) =>
      this.field(name, json, child, required.has(json), `${pointer}/properties/${json}`),
    );
    const extend = node['x-sdk-extend'];
    const shape = JSON.stringify({ fields: fields.map(({ doc: _doc, ...f }) => f), extend });
    const existing = this.classes.get(name);
    if (existing) {
      if (existing.shape !== shape)
        throw new Error(`${this.where(pointer)}: class ${name} is declared elsewhere with other members`);
      existing.files.add(this.file);
    } else {
      this.classes.set(name, {
        name,
        fields,
        extend,
        doc: node.description ?? node.title ?? `The snapshot's \`${readablePath(pointer)}\`.`,
        shape,
        files: new Set([this.file]),
      });
    }
    this.note(name);
    return name;
  }

  private field(owner: string, json: string, raw: SchemaNode, required: boolean, pointer: string): Field {
    if (!isIdentifier(json)) throw new Error(`${this.where(pointer)}: property ${json} is no identifier`);
    const node = this.resolve(raw, pointer);
    const types = node.type === undefined ? [] : typeof node.type === 'string' ? [node.type] : node.type;
    const type =
      types.length === 1
        ? types[0]
        : types.length === 0 && (node.properties || node.additionalProperties !== undefined)
          ? 'object'
          : '';
    const doc = node.description ?? '';
    const absentNote = (what: string): string => (required ? doc : `${doc}${doc ? ' ' : ''}${what}`.trim());
    const nonNegative =
      (node.minimum !== undefined && node.minimum >= 0) ||
      (node.exclusiveMinimum !== undefined && node.exclusiveMinimum >= 0);
    switch (type ?? '') {
      case 'string': {
        this.enumOf(node, pointer);
        const initial = typeof node.const === 'string' ? lit(node.const) : "''";
        const values = node.enum?.filter((v): v is string => typeof v === 'string') ?? [];
        const cls = node['x-sdk-class'];
        const oneOf =
          values.length > 0
            ? ` One of ${values.map((v) => `\`${v}\``).join(', ')}${cls ? ` (\`${cls}\`)` : ''}.`
            : '';
        const text = `${doc}${oneOf}`.trim();
        const note = required ? text : `${text} "" when absent.`.trim();
        return { json, type: { kind: 'string' }, required, initial, doc: note };
      }
      case 'boolean':
        return {
          json,
          type: { kind: 'bool' },
          required,
          initial: 'false',
          doc: absentNote('false when absent.'),
        };
      case 'number':
      case 'integer': {
        const override = node['x-sdk-type'];
        if (override !== undefined && override !== 'i32' && override !== 'f64')
          throw new Error(`${this.where(pointer)}: x-sdk-type ${override} is not i32 or f64`);
        const kind = override ?? (type === 'integer' && typeof node.const === 'number' ? 'i32' : 'f64');
        if (required) {
          const initial = typeof node.const === 'number' ? String(node.const) : '0';
          return { json, type: { kind }, required, initial, doc };
        }
        const sentinel = nonNegative || kind === 'i32' ? 'negative' : 'nan';
        return {
          json,
          type: { kind },
          required,
          initial: sentinel === 'negative' ? '-1' : 'NaN',
          sentinel,
          doc: absentNote(sentinel === 'negative' ? '-1 when absent.' : 'NaN when absent.'),
        };
      }
      case 'array': {
        const items = node.items ? this.resolve(node.items, `${pointer}/items`) : {};
        const itemType = typeof items.type === 'string' ? items.type : undefined;
        const emptyNote = absentNote('Empty when absent.');
        if (itemType === 'string') {
          this.enumOf(items, `${pointer}/items`);
          return { json, type: { kind: 'strings' }, required, initial: '[]', doc: emptyNote };
        }
        if (itemType === 'number' || itemType === 'integer')
          return { json, type: { kind: 'numbers' }, required, initial: '[]', doc: emptyNote };
        if ((itemType === 'object' || itemType === undefined) && items.properties) {
          const name = this.classOf(items, `${owner}${pascal(json)}Item`, `${pointer}/items`);
          return { json, type: { kind: 'classes', name }, required, initial: '[]', doc: emptyNote };
        }
        return { json, type: { kind: 'array' }, required, initial: 'new JsonArray()', doc: emptyNote };
      }
      case 'object': {
        if (node.properties) {
          const name = this.classOf(node, `${owner}${pascal(json)}`, pointer);
          const initial = required ? `new ${name}()` : 'null';
          return {
            json,
            type: { kind: 'class', name },
            required,
            initial,
            doc: absentNote('null when absent.'),
          };
        }
        // A map (or free-form object) stays a JsonObject; its value class, when it has one, reads entries.
        let mapNote = '';
        if (typeof node.additionalProperties === 'object') {
          const values = this.resolve(node.additionalProperties, `${pointer}/additionalProperties`);
          if (values.properties) {
            const name = this.classOf(
              values,
              `${owner}${pascal(json)}Entry`,
              `${pointer}/additionalProperties`,
            );
            mapNote = ` Each entry reads with \`${name}.fromJson\`.`;
          }
        }
        return {
          json,
          type: { kind: 'object' },
          required,
          initial: 'new JsonObject()',
          doc: `${absentNote('Empty when absent.')}${mapNote}`.trim(),
        };
      }
      default:
        return {
          json,
          type: { kind: 'value' },
          required,
          initial: 'null',
          doc: absentNote('null when absent.'),
        };
    }
  }
}

function tsType(f: Field): string {
  const t = f.type;
  switch (t.kind) {
    case 'string':
      return 'string';
    case 'f64':
    case 'i32':
      return t.kind;
    case 'bool':
      return 'bool';
    case 'strings':
      return 'string[]';
    case 'numbers':
      return 'f64[]';
    case 'object':
      return 'JsonObject';
    case 'array':
      return 'JsonArray';
    case 'value':
      return 'JsonValue | null';
    case 'class':
      return f.required ? t.name : `${t.name} | null`;
    case 'classes':
      return `${t.name}[]`;
  }
}

function readLines(f: Field): string[] {
  const k = lit(f.json);
  const m = `this.${f.json}`;
  const t = f.type;
  switch (t.kind) {
    case 'string':
      return [`${m} = o.getString(${k}, ${f.initial});`];
    case 'f64':
      return [`${m} = o.getNumber(${k}, ${f.initial});`];
    case 'i32':
      return [`${m} = <i32>o.getNumber(${k}, ${f.initial});`];
    case 'bool':
      return [`${m} = o.getBool(${k}, ${f.initial});`];
    case 'strings':
      return [`${m} = o.getStrings(${k});`];
    case 'numbers':
      return [
        '{',
        `  const items = o.getArray(${k}).items;`,
        '  const list: f64[] = [];',
        '  for (let i = 0; i < items.length; i++) if (items[i].kind == JsonKind.Number) list.push(items[i].asNumber());',
        `  ${m} = list;`,
        '}',
      ];
    case 'object':
      return [`${m} = o.getObject(${k});`];
    case 'array':
      return [`${m} = o.getArray(${k});`];
    case 'value':
      return [`${m} = o.get(${k});`];
    case 'class': {
      if (f.required)
        return ['{', `  const v = new ${t.name}();`, `  v.readJson(o.getObject(${k}));`, `  ${m} = v;`, '}'];
      return [
        '{',
        `  const v = o.get(${k});`,
        // AssemblyScript needs the nullable type stated: a bare `null` arm has none.
        `  const vo: JsonObject | null = v == null ? null : v.asObject();`,
        '  if (vo == null) {',
        `    ${m} = null;`,
        '  } else {',
        `    const c = new ${t.name}();`,
        '    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript needs it',
        '    c.readJson(vo!);',
        `    ${m} = c;`,
        '  }',
        '}',
      ];
    }
    case 'classes':
      return [
        '{',
        `  const items = o.getArray(${k}).items;`,
        `  const list: ${t.name}[] = [];`,
        '  for (let i = 0; i < items.length; i++) {',
        '    const io = items[i].asObject();',
        '    if (io == null) continue;',
        `    const c = new ${t.name}();`,
        '    c.readJson(io);',
        '    list.push(c);',
        '  }',
        `  ${m} = list;`,
        '}',
      ];
  }
}

function writeLines(f: Field): string[] {
  const k = lit(f.json);
  const m = `this.${f.json}`;
  const t = f.type;
  const guard = (cond: string, lines: string[]): string[] => {
    if (f.required) return lines;
    const inner = lines[0] === '{' ? lines.slice(1, -1).map((l) => l.slice(2)) : lines;
    return [`if (${cond}) {`, ...inner.map((l) => `  ${l}`), '}'];
  };
  switch (t.kind) {
    case 'string':
      return guard(`${m}.length > 0`, [`o.set(${k}, new JsonString(${m}));`]);
    case 'f64':
    case 'i32': {
      const value = t.kind === 'i32' ? `<f64>${m}` : m;
      const cond = f.sentinel === 'nan' ? `!isNaN(${m})` : `${m} >= 0`;
      return guard(cond, [`o.set(${k}, new JsonNumber(${value}));`]);
    }
    case 'bool':
      return guard(m, [`o.set(${k}, new JsonBool(${m}));`]);
    case 'strings':
    case 'numbers':
    case 'classes': {
      const item =
        t.kind === 'strings'
          ? `new JsonString(${m}[i])`
          : t.kind === 'numbers'
            ? `new JsonNumber(${m}[i])`
            : `${m}[i].toJson()`;
      return guard(`${m}.length > 0`, [
        '{',
        '  const a = new JsonArray();',
        `  for (let i = 0; i < ${m}.length; i++) a.items.push(${item});`,
        `  o.set(${k}, a);`,
        '}',
      ]);
    }
    case 'object':
      return guard(`${m}.keys.length > 0`, [`o.set(${k}, ${m});`]);
    case 'array':
      return guard(`${m}.items.length > 0`, [`o.set(${k}, ${m});`]);
    case 'value':
      return [
        '{',
        `  const v = ${m};`,
        f.required
          ? `  o.set(${k}, v == null ? new JsonValue(JsonKind.Null) : v);`
          : `  if (v != null) o.set(${k}, v);`,
        '}',
      ];
    case 'class':
      if (f.required) return [`o.set(${k}, ${m}.toJson());`];
      return ['{', `  const v = ${m};`, `  if (v != null) o.set(${k}, v.toJson());`, '}'];
  }
}

function renderClass(c: ClassDef): string[] {
  const self = c.extend !== undefined ? `${c.name}Fields` : c.name;
  const out: string[] = [];
  const doc =
    c.extend !== undefined
      ? `${c.doc}${c.doc ? ' ' : ''}The data of \`${c.name}\`, which sdk/assembly/${c.extend}.ts declares with its methods.`
      : c.doc;
  out.push(...docComment(doc, ''));
  out.push(`export class ${self} {`);
  for (const f of c.fields) {
    out.push(...docComment(f.doc, '  '));
    out.push(`  ${f.json}: ${tsType(f)} = ${f.initial};`);
  }
  if (c.extend === undefined) {
    out.push('', '  /** Reads every field of `o`; an absent or mistyped one keeps its default. */');
    out.push(
      `  static fromJson(o: JsonObject): ${c.name} {`,
      `    const v = new ${c.name}();`,
      '    v.readJson(o);',
    );
    out.push('    return v;', '  }');
  }
  out.push('', '  /** Sets every field from `o`; an absent or mistyped one gets its default. */');
  out.push('  readJson(o: JsonObject): void {');
  for (const f of c.fields) out.push(...readLines(f).map((l) => `    ${l}`));
  out.push('  }', '');
  out.push('  /** Every field as JSON (optional ones only when set). */', '  toJson(): JsonObject {');
  out.push('    const o = new JsonObject();');
  for (const f of c.fields) out.push(...writeLines(f).map((l) => `    ${l}`));
  out.push('    return o;', '  }', '}');
  return out;
}

function renderEnum(e: EnumDef, sources: readonly string[]): string[] {
  const values = [...e.values.values()][0] ?? [];
  const schemaNames = sources.map((s) => `${CONTRACTS_DIR}/${s}.schema.json`).join(', ');
  const out = [
    ...docComment(`${e.doc ? `${e.doc} ` : ''}The values the contract allows (${schemaNames}).`, ''),
  ];
  out.push(`export class ${e.name} {`);
  const names = new Set<string>();
  for (const v of values) {
    const n = constName(v);
    if (names.has(n)) throw new Error(`constants ${e.name}: two values map to ${n}`);
    names.add(n);
    out.push(`  static readonly ${n}: string = ${lit(v)};`);
  }
  out.push('', '  /** Whether `value` is one of them. */', '  static has(value: string): bool {');
  out.push(`    return ${values.map((v) => `value == ${lit(v)}`).join(' || ')};`, '  }', '}');
  return out;
}

/** The hook schemas the SDK mirrors: `*-snapshot` get classes, `*-decision` constants. */
export async function readPluginContracts(contractsDir: string): Promise<Map<string, SchemaNode>> {
  const names = (await readdir(contractsDir))
    .filter((n) => /-(snapshot|decision)\.schema\.json$/.test(n))
    .sort();
  const out = new Map<string, SchemaNode>();
  for (const n of names)
    out.set(
      n.replace(/\.schema\.json$/, ''),
      JSON.parse(await readFile(join(contractsDir, n), 'utf8')) as SchemaNode,
    );
  return out;
}

/** Renders the generated SDK sources from the hook schemas (keyed by file name without `.schema.json`). */
export async function renderPluginSdk(schemas: ReadonlyMap<string, SchemaNode>): Promise<GeneratedFile[]> {
  const registry = new Registry();
  for (const [file, doc] of schemas) {
    registry.use(file, doc);
    if (file.endsWith('-snapshot')) registry.classOf(doc, pascal(file), '');
    else registry.constants(doc, '');
  }
  for (const e of registry.enums.values()) {
    const [first, ...rest] = [...e.values.entries()];
    for (const [file, values] of rest)
      if (JSON.stringify(values) !== JSON.stringify(first![1]))
        throw new Error(
          `constants ${e.name}: ${first![0]} allows ${first![1].join(', ')}, ${file} allows ${values.join(', ')}`,
        );
  }
  // A class or constants used by more than one schema lives in shared.ts, once.
  const home = new Map<string, string>();
  const sources = new Map<string, string[]>();
  for (const [file, names] of registry.order)
    for (const n of names) {
      const files = registry.classes.get(n)?.files ?? new Set(registry.enums.get(n)!.values.keys());
      home.set(n, files.size > 1 ? SHARED : file);
      sources.set(n, [...files]);
    }
  const outputs = [...schemas.keys(), SHARED];
  // The repository's prettier settings, so the output passes `prettier --check` as written.
  const config =
    (await prettier.resolveConfig(
      fileURLToPath(new URL('../sdk/assembly/generated/x.ts', import.meta.url)),
    )) ?? {};
  const files: GeneratedFile[] = [];
  for (const out of outputs) {
    const names = [...new Set([...registry.order.values()].flat())].filter((n) => home.get(n) === out);
    if (names.length === 0) continue;
    const body: string[] = [];
    for (const n of names) {
      const cls = registry.classes.get(n);
      body.push('', ...(cls ? renderClass(cls) : renderEnum(registry.enums.get(n)!, sources.get(n)!)));
    }
    const text = body.join('\n');
    const code = text.replace(/\/\*\*[\s\S]*?\*\//g, '');
    const used = (id: string): boolean => new RegExp(`\\b${id}\\b`).test(code);
    const imports: string[] = [];
    const jsonNames = JSON_CLASSES.filter(used);
    if (jsonNames.length > 0) imports.push(`import { ${jsonNames.join(', ')} } from '../json';`);
    const foreign = new Map<string, string[]>();
    for (const c of registry.classes.values()) {
      const from =
        c.extend !== undefined ? `../${c.extend}` : home.get(c.name) !== out ? `./${home.get(c.name)!}` : '';
      if (from === '' || !used(c.name)) continue;
      foreign.set(from, [...(foreign.get(from) ?? []), c.name]);
    }
    for (const [from, ids] of [...foreign].sort())
      imports.push(`import { ${ids.sort().join(', ')} } from '${from}';`);
    const origin =
      out === SHARED
        ? [...new Set(names.flatMap((n) => sources.get(n)!))]
            .sort()
            .map((s) => `${CONTRACTS_DIR}/${s}.schema.json`)
            .join(', ')
        : `${CONTRACTS_DIR}/${out}.schema.json`;
    const header = [
      `// Generated by \`npm run gen\` (scripts/gen-plugin-sdk.ts) from ${origin}. Do not edit.`,
      ...(/<(i32|f64)>/.test(text)
        ? [
            '/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32> and <f64> are value conversions, not type assertions */',
          ]
        : []),
    ];
    const content = await prettier.format([...header, ...imports, ...body, ''].join('\n'), {
      ...config,
      parser: 'typescript',
    });
    files.push({ path: `${SDK_GENERATED_DIR}/${out}.ts`, content });
  }
  return files;
}

/**
 * `npm run gen`'s entry: every generated SDK file from `<root>/contracts/plugins`, or from
 * `$LLORCH_GEN_PLUGIN_CONTRACTS` (a test renders edited copies of the schemas that way).
 */
export async function generatePluginSdk(
  root: string,
  contractsDir = process.env['LLORCH_GEN_PLUGIN_CONTRACTS'] ?? join(root, CONTRACTS_DIR),
): Promise<GeneratedFile[]> {
  return renderPluginSdk(await readPluginContracts(contractsDir));
}
