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
// ratio against it a conservative one. Each round also measures the
// process's CPU time (process.cpuUsage: user + system, every thread), which
// time spent waiting for a core on a loaded machine does not inflate; the
// fastest round by CPU time is reported separately. One JSON line a filter:
// {"filter", "nsPerOp", "asyncNsPerOp", "syncNsPerOp", "asyncCpuNsPerOp",
// "syncCpuNsPerOp", "value"} or {"filter", "error"}.
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

// time returns the fastest of three rounds, in ns per evaluation: by wall
// time (ns) and by CPU time (cpuNs).
async function time(fn, tree) {
  const isAsync = fn.constructor.name === 'AsyncFunction'
  let cpu = 0
  const run = async (n) => {
    const cpuStart = process.cpuUsage()
    const start = process.hrtime.bigint()
    let hits = 0 // uses every result, so the JIT cannot drop the work
    if (isAsync) for (let i = 0; i < n; i++) hits += (await fn(tree)) === true
    else for (let i = 0; i < n; i++) hits += fn(tree) === true // no await: it would add a microtask
    const ns = Number(process.hrtime.bigint() - start)
    const used = process.cpuUsage(cpuStart)
    cpu = (used.user + used.system) * 1000
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
  let bestCpu = cpu
  for (let round = 1; round < 3; round++) {
    best = Math.min(best, await run(n))
    bestCpu = Math.min(bestCpu, cpu)
  }
  return {ns: best / n, cpuNs: bestCpu / n}
}

for (const filter of filters) {
  try {
    const tree = parse(filter, {params: {}})
    const value = await entryPoints.async(tree)
    const syncValue = entryPoints.sync(tree)
    if (JSON.stringify(value) !== JSON.stringify(syncValue)) {
      throw new Error(`evaluate gives ${JSON.stringify(value)}, evaluateSync ${JSON.stringify(syncValue)}`)
    }
    const a = await time(entryPoints.async, tree)
    const s = await time(entryPoints.sync, tree)
    console.log(JSON.stringify({
      filter,
      nsPerOp: Math.min(a.ns, s.ns),
      asyncNsPerOp: a.ns,
      syncNsPerOp: s.ns,
      asyncCpuNsPerOp: a.cpuNs,
      syncCpuNsPerOp: s.cpuNs,
      value,
    }))
  } catch (e) {
    console.log(JSON.stringify({filter, error: `${e.name}: ${e.message}`}))
  }
}
