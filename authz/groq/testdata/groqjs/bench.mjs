// bench.mjs times groq-js evaluating GROQ filters on one document, for
// BenchmarkVsGroqJS (authz/groq/groqjs_test.go).
//
//   node bench.mjs FILTERS.txt DOC.json [IDENTITY]
//
// FILTERS.txt holds one filter a line (blank lines and # comments skipped).
// Each filter is parsed once, then evaluated with @ = the document (what a
// grant check does) through both of groq-js's entry points, evaluate (async)
// and evaluateSync, in rounds of at least half a second after a warm-up.
// The reported nsPerOp is the fastest round of the faster entry point: on a
// shared machine noise only adds time, so this is groq-js's best case and a
// ratio against it a conservative one. One JSON line a filter:
// {"filter", "nsPerOp", "asyncNsPerOp", "syncNsPerOp", "value"} or {"filter", "error"}.
import {readFileSync} from 'node:fs'
import {parse, evaluate, evaluateSync} from 'groq-js'

const [filtersFile, docFile, identity = ''] = process.argv.slice(2)
if (!filtersFile || !docFile) {
  console.error('usage: node bench.mjs FILTERS.txt DOC.json [IDENTITY]')
  process.exit(2)
}
const filters = readFileSync(filtersFile, 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
const doc = JSON.parse(readFileSync(docFile, 'utf8'))
const options = {root: doc, identity, timestamp: new Date('2026-01-02T03:04:05Z'), params: {}}

const entryPoints = {
  async: async (tree) => (await evaluate(tree, options)).get(),
  sync: (tree) => evaluateSync(tree, options).data,
}

// time returns the fastest of three rounds, in ns per evaluation.
async function time(fn, tree) {
  const isAsync = fn.constructor.name === 'AsyncFunction'
  const run = async (n) => {
    const start = process.hrtime.bigint()
    let hits = 0 // uses every result, so the JIT cannot drop the work
    if (isAsync) for (let i = 0; i < n; i++) hits += (await fn(tree)) === true
    else for (let i = 0; i < n; i++) hits += fn(tree) === true // no await: it would add a microtask
    const ns = Number(process.hrtime.bigint() - start)
    if (hits !== 0 && hits !== n) throw new Error(`the filter's value changed between evaluations`)
    return ns
  }
  await run(20000) // warm-up: let the JIT compile the evaluator
  let n = 1000
  let ns = await run(n)
  while (ns < 5e8) {
    n = Math.min(n * 10, Math.ceil((n * 6e8) / Math.max(ns, 1)))
    ns = await run(n)
  }
  let best = ns
  for (let round = 1; round < 3; round++) best = Math.min(best, await run(n))
  return best / n
}

for (const filter of filters) {
  try {
    const tree = parse(filter, {params: {}})
    const value = await entryPoints.async(tree)
    const syncValue = entryPoints.sync(tree)
    if (JSON.stringify(value) !== JSON.stringify(syncValue)) {
      throw new Error(`evaluate gives ${JSON.stringify(value)}, evaluateSync ${JSON.stringify(syncValue)}`)
    }
    const asyncNs = await time(entryPoints.async, tree)
    const syncNs = await time(entryPoints.sync, tree)
    console.log(JSON.stringify({filter, nsPerOp: Math.min(asyncNs, syncNs), asyncNsPerOp: asyncNs, syncNsPerOp: syncNs, value}))
  } catch (e) {
    console.log(JSON.stringify({filter, error: `${e.name}: ${e.message}`}))
  }
}
