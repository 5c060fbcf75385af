// Mutation check of checker.mjs: `node test/nemesis/checker-mutants.mjs [name...]`.
// Writes deliberately broken copies of checker.mjs to a temporary folder and runs each through the
// two differential tests of checker.test.ts (6000 small histories against the brute force, 1200 of
// up to 80 ops against the plain WGL search), printing the disagreements (and the internal errors
// thrown when a counterexample's prefix does not replay). A mutant with 0 and 0 is
// either equivalent or a gap in the tests. Slow (about a minute per mutant on a busy machine).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bruteLinearizable, plainWgl } from './bruteforce.mjs';
import { rng, smallHistory } from './histgen.mjs';

/** name -> [from, to] replacements (each must occur in checker.mjs) */
const MUTANTS = {
  'ties: returns before calls at equal t': [['(a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1)', '(a.isCall === b.isCall ? 0 : a.isCall ? 1 : -1)']],
  'info ops required (no "leave out")': [['if (e === null || e.time === Infinity) return null;', 'if (e === null) return null;']],
  'memo ignores the state': [['let h = Math.imul((2166136261 ^ state) >>> 0, 16777619) ^ lo;', 'let h = Math.imul(2166136261, 16777619) ^ lo;'], ['if (g.state !== state || g.lo', 'if (g.lo']],
  'fail ops kept': [["const kept = all.filter((o) => o.status !== 'fail' && ", 'const kept = all.filter((o) => ']],
  'delete always returns true': [['return p.out === (state !== 0) ? 0 : -1;', 'return p.out === true ? 0 : -1;']],
  'set treated as pure (forced)': [["case 'set': return { kind: SET, known, pure: false,", "case 'set': return { kind: SET, known, pure: true,"]],
  'every ok cas treated as pure': [['pure: known && (op.output === false || a === b)', 'pure: known']],
  'incr 0 treated as pure': [["case 'incr': return { kind: INCR, known, pure: false,", "case 'incr': return { kind: INCR, known, pure: known && op.input === 0,"]],
  'dominance test reversed (superset)': [['for (let i = 0; i < opt.length; i++) if ((o[i] & ~opt[i]) !== 0) continue next;', 'for (let i = 0; i < opt.length; i++) if ((opt[i] & ~o[i]) !== 0) continue next;']],
  'last candidate never tried': [['    out.sort((x, y) =>', '    out.pop();\n    out.sort((x, y) =>']],
  'backtracking does not restore the state': [['      state = top.state;\n', '']],
  'compact memo ignores the first-word index': [['g.lo !== lo || ', ''], ['let h = Math.imul((2166136261 ^ state) >>> 0, 16777619) ^ lo;', 'let h = Math.imul((2166136261 ^ state) >>> 0, 16777619);']],
  'unread-value merge ignores cas expectations': [["        if (o.f === 'cas') this.observed.add(tag(o.input[0]));\n", '']],
  'unread-value merge on incr keys': [["    if (merge && !ops.some((o) => o.f === 'incr')) {", '    if (merge) {']],
  'unread-value merge ignores reads': [["        if ((o.f === 'get' || o.f === 'final') && o.status === 'ok') this.observed.add(tag(o.output));\n", '']],
};

const here = new URL('.', import.meta.url);
const source = readFileSync(new URL('checker.mjs', here), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'checker-mutants-'));
const only = process.argv.slice(2);
try {
  for (const [name, edits] of Object.entries(MUTANTS)) {
    if (only.length > 0 && !only.some((o) => name.includes(o))) continue;
    let text = source;
    for (const [from, to] of edits) {
      if (!text.includes(from)) throw new Error(`mutant "${name}": text not found in checker.mjs: ${from}`);
      text = text.replace(from, to);
    }
    const file = join(dir, `m${Object.keys(MUTANTS).indexOf(name)}.mjs`);
    writeFileSync(file, text);
    const m = await import(pathToFileURL(file).href);
    let small = 0, medium = 0, crashed = 0;
    /** @param {any} ops */
    const check = (ops) => { try { return m.checkLinearizable(ops, { budgetMs: 1000 }); } catch { crashed++; return null; } };
    let r = rng(20261125);
    for (let i = 0; i < 6000; i++) {
      const h = smallHistory(r, { mode: /** @type {const} */ (['random', 'register', 'mutated'])[i % 3], counter: i % 5 === 4 });
      const ops = m.readHistory(h.text);
      const got = check(ops);
      if (got !== null && got.valid !== bruteLinearizable(ops)) small++;
    }
    r = rng(3);
    for (let i = 0; i < 1200; i++) {
      const h = smallHistory(r, { mode: /** @type {const} */ (['register', 'mutated', 'mutated'])[i % 3], maxOps: 80, counter: i % 7 === 0 });
      const ops = m.readHistory(h.text);
      for (const k of check(ops)?.keys ?? []) {
        const want = plainWgl(ops.filter((/** @type {any} */ o) => o.key === k.key), 500);
        if (want !== 'unknown' && want !== k.valid) medium++;
      }
    }
    console.log(`${name}: ${small} small, ${medium} medium disagreements${crashed ? `, ${crashed} internal errors (the counterexample replay check)` : ''}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
