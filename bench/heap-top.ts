// Summarises a V8 .heapsnapshot: self size and count by node type and constructor name, top N.
// `node --max-old-space-size=4096 bench/heap-top.ts <file.heapsnapshot> [N]`.
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/heap-top.ts <file.heapsnapshot> [N]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
};
const fields = snapshot.snapshot.meta.node_fields;
const width = fields.length;
const typeAt = fields.indexOf('type');
const nameAt = fields.indexOf('name');
const sizeAt = fields.indexOf('self_size');
const types = snapshot.snapshot.meta.node_types[0];
const groups = new Map<string, { size: number; count: number }>();
let total = 0;
for (let i = 0; i < snapshot.nodes.length; i += width) {
  const type = types[snapshot.nodes[i + typeAt] as number] ?? '?';
  const size = snapshot.nodes[i + sizeAt] as number;
  const name =
    type === 'object' || type === 'closure'
      ? (snapshot.strings[snapshot.nodes[i + nameAt] as number] ?? '?')
      : '';
  const key = `${type}${name ? ` ${name.slice(0, 60)}` : ''}`;
  const group = groups.get(key) ?? { size: 0, count: 0 };
  group.size += size;
  group.count += 1;
  groups.set(key, group);
  total += size;
}
process.stdout.write(`${(total / 2 ** 20).toFixed(1)} MB in ${snapshot.nodes.length / width} nodes\n`);
for (const [key, g] of [...groups].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
  process.stdout.write(
    `${(g.size / 2 ** 20).toFixed(1).padStart(7)} MB ${String(g.count).padStart(9)}  ${key}\n`,
  );
}
