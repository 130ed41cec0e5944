// The docs must name only flags, values and reasons that exist, and must name all of them: every
// condition reason in src/api has an entry in docs/troubleshooting.md, every Helm value of
// values.yaml and every flag and environment variable of src/config.ts is in
// docs/configuration.md; and the other way round, every entra-access flag, Helm key and
// reason-looking heading the docs write is real. Reads repo files only.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as constants from '../../src/api/constants.ts';
import * as types from '../../src/api/types.ts';
import { envName, OPTIONS } from '../../src/config.ts';

const repoFile = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

const troubleshooting = repoFile('docs/troubleshooting.md');
const configuration = repoFile('docs/configuration.md');
/** The docs these checks own; each is checked for flags and Helm keys that do not exist. */
const DOCS = ['README.md', 'docs/aks-guide.md', 'docs/configuration.md', 'docs/troubleshooting.md'] as const;

// --- Sources of truth ---

/** Every condition reason src/api exports: the values of each export whose name says "reason". */
function reasonsOfApi(): Set<string> {
  const reasons = new Set<string>();
  for (const module of [constants, types] as Array<Record<string, unknown>>) {
    for (const [name, value] of Object.entries(module)) {
      if (!/reason/i.test(name) || typeof value !== 'object' || value === null) continue;
      for (const reason of Object.values(value)) if (typeof reason === 'string') reasons.add(reason);
    }
  }
  return reasons;
}

const FLAGS = Object.keys(OPTIONS);
/** Flags `entra-access` understands: those of `run`, and --help (src/main.ts). */
const KNOWN_FLAGS = new Set([...FLAGS, 'help'].map((flag) => `--${flag}`));

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
}
const schema = JSON.parse(repoFile('charts/entra-access/values.schema.json')) as SchemaNode;

/**
 * Whether `path` is a Helm key the chart accepts: each part a property of the schema, until a node
 * without `properties` (a free-form map such as serviceAccount.annotations), below which any key goes.
 */
function inSchema(path: string[]): boolean {
  let node: SchemaNode = schema;
  for (const part of path) {
    if (!node.properties) return [node.type].flat().includes('object');
    const child: SchemaNode | undefined = node.properties[part];
    if (child === undefined) return false;
    node = child;
  }
  return true;
}

interface ValuesKey {
  path: string[];
  /** Preceded by a `# --` comment: a value in the helm-docs sense. */
  documented: boolean;
  /** Has no child keys in the file. */
  leaf: boolean;
}

/**
 * The key paths of a block-style YAML document (values.yaml, or a values file in the docs), by
 * indentation. Enough for Helm values files: block maps, scalars, flow `{}`/`[]` and `- item` lists.
 */
function yamlKeyPaths(text: string): ValuesKey[] {
  const keys: ValuesKey[] = [];
  const stack: Array<{ indent: number; key: string }> = [];
  let documented = false;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('# --')) {
      documented = true;
      continue;
    }
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith('-')) continue;
    const match = /^( *)("[^"]+"|'[^']+'|[^\s:#][^:#]*?):(\s|$)/.exec(line);
    if (!match) continue;
    const indent = match[1]!.length;
    const key = match[2]!.replace(/^["']|["']$/g, '');
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
    const parent = keys.find((k) => k.path.join('\0') === stack.map((s) => s.key).join('\0'));
    if (parent) parent.leaf = false;
    stack.push({ indent, key });
    keys.push({ path: stack.map((s) => s.key), documented, leaf: true });
    documented = false;
  }
  return keys;
}

const valuesKeys = yamlKeyPaths(repoFile('charts/entra-access/values.yaml'));
const documentedValues = valuesKeys.filter((k) => k.documented).map((k) => k.path.join('.'));

// --- Reading the docs ---

/** Markdown outside fenced code blocks, and the fenced blocks themselves. */
function split(markdown: string): { prose: string; fences: string[] } {
  const prose: string[] = [];
  const fences: string[] = [];
  let fence: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) {
      if (fence) {
        fences.push(fence.join('\n'));
        fence = undefined;
      } else fence = [];
      continue;
    }
    (fence ?? prose).push(line);
  }
  return { prose: prose.join('\n'), fences };
}

/** Inline code spans of prose. */
function inlineCode(prose: string): string[] {
  return [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** Shell commands of fenced blocks, with `\` continuations joined. */
function commands(fences: string[]): string[] {
  return fences.flatMap((fence) => fence.replace(/\\\n\s*/g, ' ').split('\n'));
}

/** Flags of commands run with other tools (az, kubectl, helm, ...): documented by those tools. */
function toolFlags(fences: string[]): Set<string> {
  const flags = new Set<string>();
  for (const command of commands(fences)) {
    if (/^\s*(\S+=\S+\s+)*entra-access\b/.test(command)) continue;
    for (const m of command.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)) flags.add(m[1]!);
  }
  return flags;
}

/** The `--flag` names an inline code span mentions, e.g. `--injection-mode=inject` → --injection-mode. */
function inlineFlags(prose: string): string[] {
  return inlineCode(prose)
    .filter((code) => !OTHER_TOOL.test(code))
    .flatMap((code) => [...code.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
}

/** An inline command of another tool, e.g. `az identity show --ids <id>`: its flags are that tool's. */
const OTHER_TOOL = /^(az|kubectl|helm|psql|npm|node|make|git)\s/;

/** `a.b\.c=x` → ['a', 'b.c']. */
function setPath(key: string): string[] {
  return key
    .split(/(?<!\\)\./)
    .map((part) => part.replaceAll('\\.', '.'))
    .filter((part) => part !== '');
}

/** Keys given with `--set`, `--set-string` or `--set-json` in fenced helm commands. */
function helmSetKeys(fences: string[]): string[][] {
  const keys: string[][] = [];
  for (const command of commands(fences)) {
    if (!/\bhelm\b/.test(command)) continue;
    for (const m of command.matchAll(/--set(?:-string|-json|-file)?[ =]"?((?:[^\s=,"]|\\.)+)=/g)) {
      keys.push(setPath(m[1]!));
    }
  }
  return keys;
}

/** Values files written by the docs: `cat > <name>values<name>.yaml <<EOF ... EOF` heredocs. */
function valuesFiles(fences: string[]): string[] {
  const files: string[] = [];
  for (const fence of fences) {
    for (const m of fence.matchAll(/cat > \S*values\S*\.ya?ml <<'?(\w+)'?\n([\s\S]*?)\n\1\n?/g)) {
      files.push(m[2]!);
    }
  }
  return files;
}

/** `#### \`Name\`` headings: the reason entries of the troubleshooting guide. */
function reasonHeadings(markdown: string): string[] {
  return [...markdown.matchAll(/^#{2,6}\s+`([A-Za-z][A-Za-z0-9]*)`\s*$/gm)].map((m) => m[1]!);
}

/** The rows of the tables in the `## <heading>` section, as cells with code spans unwrapped. */
function tableRows(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) return [];
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\|(.*)\|\s*$/gm)].map((m) =>
    m[1]!.split('|').map((cell) => cell.trim().replace(/^`([^`]*)`$/, '$1')),
  );
}

/** The first column of the Helm values tables: one key path per row. */
const helmTableKeys = (markdown: string): string[] =>
  tableRows(markdown, 'Helm values').map((row) => row[0]!);

// --- The checks ---

describe('docs/troubleshooting.md', () => {
  const reasons = reasonsOfApi();
  const headings = reasonHeadings(troubleshooting);

  it('finds the reasons of src/api', () => {
    expect(reasons.size).toBeGreaterThan(20);
    expect(reasons).toContain('RoleOwnsObjects');
  });

  it('has an entry (a heading) for every condition reason in src/api', () => {
    const missing = [...reasons].filter((reason) => !headings.includes(reason));
    expect(missing, 'reasons without a `#### `Reason`` entry in docs/troubleshooting.md').toEqual([]);
  });

  it('has no reason-looking heading that is not a real reason', () => {
    const unknown = headings.filter((heading) => !reasons.has(heading));
    expect(unknown, 'headings naming no reason of src/api').toEqual([]);
  });
});

describe('what the docs say Azure does (issue 13 §5)', () => {
  const all = DOCS.map((file) => [file, repoFile(file)] as const);

  it('warns, before every command that turns on Microsoft Entra auth, that it restarts the server', () => {
    const commands = all.flatMap(([file, text]) =>
      [...text.matchAll(/^[^\n`]*--microsoft-entra-auth Enabled[^\n]*$/gm)].map((m) => ({
        file,
        before: text.slice(Math.max(0, m.index - 1200), m.index),
      })),
    );
    expect(commands.length, 'the AKS guide turns Entra auth on').toBeGreaterThan(0);
    for (const { file, before } of commands) expect(before, file).toMatch(/restarts\s+the\s+server/);
  });

  it('gives a managed identity token its real lifetime, up to 24 hours, never about an hour', () => {
    const text = all.map(([, t]) => t).join('\n');
    expect(text).toMatch(/token can live up to 24 hours/);
    expect(text).not.toMatch(/tokens?[^.\n]{0,60}\b(about|around|~)\s*(an|one|1)\s*h(our)?\b/i);
  });
});

describe('docs/configuration.md', () => {
  it('lists every flag of src/config.ts with its environment variable, one table row each', () => {
    expect(FLAGS.length).toBeGreaterThan(30);
    const rows = tableRows(configuration, 'Flags and environment variables');
    const missing = FLAGS.filter(
      (flag) => !rows.some(([f, env]) => f === `--${flag}` && env === envName(flag)),
    );
    expect(missing, 'flags without a `| --flag | ENTRA_ACCESS_... |` row in docs/configuration.md').toEqual(
      [],
    );
    const unknown = rows.map((row) => row[0]!).filter((f) => /^--[a-z]/.test(f) && !KNOWN_FLAGS.has(f));
    expect(unknown).toEqual([]);
  });

  it('lists every Helm value of values.yaml by its full key path, one table row each', () => {
    expect(documentedValues).toContain('webhook.extraPodLabels');
    const keys = helmTableKeys(configuration);
    const missing = documentedValues.filter((path) => !keys.includes(path));
    expect(missing, 'Helm values without a row in the Helm values tables of docs/configuration.md').toEqual(
      [],
    );
  });

  it('documents only Helm values the chart accepts', () => {
    const keys = helmTableKeys(configuration).filter((key) => key !== 'Value' && !/^-+$/.test(key));
    expect(keys).toContain('azure.oidcIssuerUrl');
    expect(keys.filter((key) => !inSchema(key.split('.')))).toEqual([]);
  });

  it('lists the annotations, labels and finalizer of src/api/constants.ts', () => {
    const names = [
      constants.FINALIZER,
      constants.NAMESPACE_OPT_IN_ANNOTATION,
      constants.NAMESPACE_OPT_IN_LABEL,
      constants.ALLOWED_IDENTITIES_ANNOTATION,
      constants.NAMESPACE_CLIENT_ID_ANNOTATION,
      constants.EXTRA_POD_LABELS_ANNOTATION,
      constants.WI_USE_LABEL,
      constants.WI_CLIENT_ID_ANNOTATION,
      constants.WI_TENANT_ID_ANNOTATION,
      constants.WI_TOKEN_EXPIRATION_ANNOTATION,
      constants.WI_SKIP_CONTAINERS_ANNOTATION,
      constants.ENV_AZURE_CLIENT_ID,
      constants.ENV_AZURE_TENANT_ID,
      constants.ENV_AZURE_FEDERATED_TOKEN_FILE,
      constants.ENV_AZURE_AUTHORITY_HOST,
      constants.TOKEN_VOLUME_NAME,
      constants.TOKEN_MOUNT_PATH,
      constants.TOKEN_FILE_PATH,
      constants.POD_WEBHOOK_PATH,
      constants.SERVICE_ACCOUNT_WEBHOOK_PATH,
      constants.NAMESPACE_WEBHOOK_PATH,
      constants.DEFAULT_WEBHOOK_CONFIGURATION_NAME,
    ];
    expect(names.filter((name) => !configuration.includes(name))).toEqual([]);
  });
});

describe('values.yaml', () => {
  it('gives every key a `# --` description, on itself or on a parent', () => {
    const undocumented = valuesKeys
      .filter((key) => key.leaf)
      .filter(
        (key) => !key.path.some((_, i) => documentedValues.includes(key.path.slice(0, i + 1).join('.'))),
      )
      .map((key) => key.path.join('.'));
    expect(undocumented).toEqual([]);
  });

  it('matches values.schema.json', () => {
    expect(documentedValues.filter((path) => !inSchema(path.split('.')))).toEqual([]);
  });
});

describe.each(DOCS)('%s', (file) => {
  const { prose, fences } = split(repoFile(file));

  it('names only entra-access flags that exist (other tools’ flags only in their commands)', () => {
    const external = toolFlags(fences);
    const unknown = inlineFlags(prose).filter((flag) => !KNOWN_FLAGS.has(flag) && !external.has(flag));
    expect(unknown).toEqual([]);
  });

  it('passes only Helm keys the chart accepts, with --set or in values files', () => {
    const keys = [
      ...helmSetKeys(fences),
      ...valuesFiles(fences).flatMap((text) => yamlKeyPaths(text).map((key) => key.path)),
    ];
    expect(keys.filter((key) => !inSchema(key)).map((key) => key.join('.'))).toEqual([]);
  });

  it('names only entra-access environment variables that exist', () => {
    const names = new Set(FLAGS.map(envName));
    const written = [...repoFile(file).matchAll(/\bENTRA_ACCESS_[A-Z0-9_]+\b/g)].map((m) => m[0]);
    const allowed = new Set(['ENTRA_ACCESS_TEST_PG_URL']);
    expect(written.filter((name) => !names.has(name) && !allowed.has(name))).toEqual([]);
  });
});

describe('the readers of the docs', () => {
  it('read a values file by indentation', () => {
    const keys = yamlKeyPaths(
      '# -- a\nazure:\n  # -- b\n  cloud: x\nextraPodLabels:\n  azure.workload.identity/use: "true"\nlist:\n  - a\n',
    );
    expect(keys.map((k) => [k.path.join('.'), k.documented, k.leaf])).toEqual([
      ['azure', true, false],
      ['azure.cloud', true, true],
      ['extraPodLabels', false, false],
      ['extraPodLabels.azure.workload.identity/use', false, true],
      ['list', false, true],
    ]);
  });

  it('check Helm keys against the schema, free-form maps included', () => {
    expect(inSchema(['azure', 'cloud'])).toBe(true);
    expect(inSchema(['serviceAccount', 'annotations', 'azure.workload.identity/client-id'])).toBe(true);
    expect(inSchema(['azure', 'clooud'])).toBe(false);
    expect(inSchema(['webhook', 'extraPodLabel'])).toBe(false);
    expect(
      helmSetKeys(['helm upgrade x ./chart \\\n  --set azure.cloud=A --set extraPodLabels.a\\.b/use=x']),
    ).toEqual([
      ['azure', 'cloud'],
      ['extraPodLabels', 'a.b/use'],
    ]);
  });

  it('tell entra-access flags from other tools’ flags', () => {
    const { prose, fences } = split(
      'Use `--bogus-flag` and `--namespace`.\n\n```sh\nkubectl get pods --namespace x\n```\n',
    );
    expect(inlineFlags(prose)).toEqual(['--bogus-flag', '--namespace']);
    expect(toolFlags(fences)).toEqual(new Set(['--namespace']));
  });
});
