// suite.mjs runs groq-js over the GROQ conformance suite and checks that it
// passes exactly as many tests as groq-js 2.0.0 is documented to pass
// (../shared/groq-test-suite/README.md: 5392 of 5446). It answers one question:
// does the installed groq-js behave as the reference on this node version?
//
//   node suite.mjs PATH/TO/suite.ndjson [-v]
//
// -v lists the failing tests. Exit status 1 when the count differs.
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {parse, evaluate} from 'groq-js'

const expected = 5392
const [file, flag] = process.argv.slice(2)
if (!file) {
  console.error('usage: node suite.mjs PATH/TO/suite.ndjson [-v]')
  process.exit(2)
}
const verbose = flag === '-v'
const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
const datasets = new Map(lines.filter((l) => l._type === 'dataset').map((d) => [d._id, d.documents]))

// Numbers compare as numbers; everything else structurally.
function equal(a, b) {
  if (typeof a === 'number' && typeof b === 'number') {
    return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => equal(x, b[i]))
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && equal(a[k], b[k]))
}

let pass = 0
let total = 0
for (const t of lines.filter((l) => l._type === 'test')) {
  total++
  const params = t.params ?? {}
  let got
  try {
    const tree = parse(t.query, {params})
    const value = await (await evaluate(tree, {dataset: datasets.get(t.dataset?._ref) ?? [], params})).get()
    got = JSON.parse(JSON.stringify(value ?? null))
  } catch (e) {
    if (!t.valid) pass++
    else if (verbose) console.log(`error  ${t.filename} ${JSON.stringify(t.query)}: ${e.message}`)
    continue
  }
  if (t.valid && equal(got, t.result)) pass++
  else if (verbose) console.log(`differ ${t.filename} ${JSON.stringify(t.query)}: got ${JSON.stringify(got)}, want ${JSON.stringify(t.result)}`)
}
const version = createRequire(import.meta.url)('groq-js/package.json').version
console.log(`groq-js ${version} on node ${process.version}: ${pass} of ${total} suite tests pass (reference: ${expected})`)
process.exit(pass === expected ? 0 : 1)
