import { type Document, isMap, isNode, isScalar, LineCounter, type Node, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue, UserError } from '../errors.js';
import { INPUT_CAPS, readInputText } from '../fsx/input.js';

/** The key node of the last element of path, when its parent is a mapping (the line of `key:`). */
function keyNodeOf(doc: ReturnType<typeof parseDocument>, path: PropertyKey[]): Node | undefined {
  if (path.length === 0) return undefined;
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1) as unknown[], true);
  if (!isMap(parent)) return undefined;
  const last = String(path.at(-1));
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === last);
  return isNode(pair?.key) ? pair.key : undefined;
}

/** The line of a key path in a YAML document (1-based), or undefined if it is absent. */
function lineOf(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  path: PropertyKey[],
): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = keyNodeOf(doc, path.slice(0, n)) ?? doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** A key as shown in a message: a name as people write them, else not quoted (it may be a secret). */
export function showKey(k: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(k) ? k : '(a key that is not a name; not shown)';
}

/** Turn zod issues into ConfigIssues that name the file, key path and line. */
export function zodIssuesToConfigIssues(
  file: string,
  issues: z.core.$ZodIssue[],
  locate?: (path: PropertyKey[]) => number | undefined,
): ConfigIssue[] {
  return issues.map((i) => {
    let message = i.message;
    if (i.code === 'unrecognized_keys')
      message = `unknown key(s) ${i.keys.map(showKey).join(', ')}: remove or fix the spelling`;
    if (i.code === 'invalid_key') message = `invalid key: ${i.issues[0]?.message ?? i.message}`;
    const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0] ?? ''] : i.path;
    return {
      file,
      path: i.path.map(String).join('.'),
      message,
      line: locate?.(path as PropertyKey[]),
    };
  });
}

/**
 * Duplicate keys of every mapping (pure walk, linear): yaml's own check compares each key with all
 * earlier ones, which made a manifest.yaml of 20,000 releases take 11 s to parse.
 */
export function duplicateKeys(doc: Document.Parsed, counter: LineCounter): { key: string; line: number }[] {
  const out: { key: string; line: number }[] = [];
  visit(doc, {
    Map(_k, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(k)) {
          const pos = isNode(pair.key) && pair.key.range ? pair.key.range[0] : 0;
          out.push({ key: String(k), line: counter.linePos(pos).line });
        }
        seen.add(k);
      }
    },
  });
  return out;
}

/**
 * The document as plain data, with aliases expanded up to a bound: a manifest with many ordinary
 * aliases is fine, an alias bomb (each alias doubling the data) is a config error, not a crash.
 */
export function yamlToJs(file: string, doc: Document.Parsed): unknown {
  try {
    return doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_EXPANSION });
  } catch (err) {
    if (err instanceof ReferenceError || /alias/i.test((err as Error).message)) {
      throw new ConfigError([
        {
          file,
          path: '',
          message: 'YAML aliases expand to too much data (an alias bomb?): write the values out',
        },
      ]);
    }
    throw err;
  }
}

/** yaml's maxAliasCount: how much alias expansion one document may do (its default, 100, refuses real manifests). */
export const YAML_MAX_ALIAS_EXPANSION = 10_000;

/** Parse YAML text and validate it against a schema, reporting every problem at once. */
export function parseYamlConfig<S extends z.ZodType>(
  file: string,
  text: string,
  schema: S,
  /** More checks on the parsed document (the same parse), reported with the schema's. */
  inspect?: (doc: Document.Parsed, counter: LineCounter) => ConfigIssue[],
): z.output<S> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: false });
  const dups = doc.errors.length === 0 ? duplicateKeys(doc, counter) : [];
  if (dups.length > 0) {
    throw new ConfigError(
      dups.map((d) => ({
        file,
        path: '',
        message: `YAML syntax: Map keys must be unique ("${d.key}")`,
        line: d.line,
      })),
    );
  }
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
        line: counter.linePos(e.pos[0]).line,
      })),
    );
  }
  const extra = inspect?.(doc, counter) ?? [];
  const result = schema.safeParse(yamlToJs(file, doc) ?? {});
  if (!result.success) {
    throw new ConfigError([
      ...extra,
      ...zodIssuesToConfigIssues(file, result.error.issues, (p) => lineOf(doc, counter, p)),
    ]);
  }
  if (extra.length > 0) throw new ConfigError(extra);
  return result.data;
}

export async function loadYamlConfig<S extends z.ZodType>(
  file: string,
  schema: S,
  /** The tree the file must stay in (a symlink out of it is refused): the project. */
  within?: string,
): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readInputText(file, { maxBytes: INPUT_CAPS.config, within });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(
        'E_CONFIG_MISSING',
        `${file} not found`,
        'run osbake from the project directory or pass --project DIR',
      );
    }
    throw err;
  }
  return parseYamlConfig(file, text, schema);
}
