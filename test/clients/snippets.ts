// The connection snippets of docs/aks-guide.md, read from the markdown so the tests run exactly
// what a reader copies. A snippet is the fenced block right after a marker line
// `<!-- snippet: <name> -->`; names are unique.
import { readFileSync } from 'node:fs';

export interface Snippet {
  name: string;
  /** The fence's info string (js, python, ruby, java, xml, sh). */
  language: string;
  code: string;
}

const MARKER = /^<!-- snippet: ([a-z0-9-]+) -->\n```([a-z]*)\n([\s\S]*?)^```$/gm;

export function snippetsOf(markdown: string): Map<string, Snippet> {
  const snippets = new Map<string, Snippet>();
  for (const [, name, language, code] of markdown.matchAll(MARKER)) {
    if (snippets.has(name!)) throw new Error(`snippet ${name} is marked twice`);
    snippets.set(name!, { name: name!, language: language!, code: code! });
  }
  return snippets;
}

export const AKS_GUIDE = new URL('../../docs/aks-guide.md', import.meta.url);

/** The snippet `name` of docs/aks-guide.md; throws when the guide has no such marker. */
export function guideSnippet(name: string): Snippet {
  const snippet = snippetsOf(readFileSync(AKS_GUIDE, 'utf8')).get(name);
  if (!snippet) throw new Error(`docs/aks-guide.md has no block marked <!-- snippet: ${name} -->`);
  return snippet;
}
