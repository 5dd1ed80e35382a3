// harness.mjs evaluates GROQ with groq-js, the reference implementation, for
// Vellum's differential test (authz/groq/groqjs_test.go). It is started once
// and serves many requests, so the test pays node's start-up only once.
//
// Protocol: one JSON object a line on stdin, one JSON object a line on stdout,
// answers in the order of the requests.
//
//   request:  {"query": GROQ, "params": {...}, "identity": string,
//              "root": any /* the value of @ */, "dataset": [...] /* the value of * */,
//              "now": RFC 3339 /* optional, the value of now() */}
//   answer:   {"value": any}                       the result, as JSON
//          or {"error": "Name: message"}           groq-js rejected or failed on it
//
// A value that JSON cannot represent (a non-finite number) is an error, not a
// silent null, so that the comparison cannot pass by accident.
import {createInterface} from 'node:readline'
import {parse, evaluate} from 'groq-js'

// Known deviation of groq-js 2.0.0, corrected here so that the differential
// test compares against GROQ as specified, not against the bug:
//
//   path("a.**") builds the regular expression ^a..*$ from the pattern's
//   segments joined by an unescaped ".", so "author-alice" in path("a.**") and
//   "draftsXpost" in path("drafts.*") are true. A dot in a path pattern
//   separates segments; it matches a dot only.
//
// The correction joins the segments with an escaped dot and changes nothing
// else. GROQJS_AS_IS=1 in the environment leaves groq-js as published.
const corrections = []
if (process.env.GROQJS_AS_IS !== '1') {
  const sample = await (await evaluate(parse('path("a")'))).get()
  const proto = Object.getPrototypeOf(sample)
  if (typeof proto?.matches !== 'function' || typeof sample.pattern !== 'string') {
    throw new Error('groq-js path values changed shape; revisit the path correction in harness.mjs')
  }
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const segments = new WeakMap()
  proto.matches = function matches(str) {
    let re = segments.get(this)
    if (re === undefined) {
      const parts = this.pattern.split('.').map((p) => (p === '*' ? '[^.]+' : p === '**' ? '.*' : escape(p)))
      re = new RegExp(`^${parts.join('\\.')}$`)
      segments.set(this, re)
    }
    return re.test(str)
  }
  corrections.push('path patterns: "." matches a dot only')
}
if (process.argv.includes('--corrections')) {
  console.log(JSON.stringify(corrections))
  process.exit(0)
}

function plain(value) {
  // groq-js results may hold DateTime and Path objects; their toJSON gives
  // the GROQ value. Reject what JSON would turn into null.
  return JSON.stringify(value ?? null, (key, v) => {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new Error(`non-finite number ${v} in result`)
    }
    return v
  })
}

async function answer(line) {
  let req
  try {
    req = JSON.parse(line)
  } catch (e) {
    return JSON.stringify({error: `BadRequest: ${e.message}`})
  }
  try {
    const params = req.params ?? {}
    const tree = parse(req.query, {params})
    const options = {
      params,
      identity: req.identity ?? '',
      root: req.root ?? null,
      dataset: req.dataset ?? [],
    }
    if (req.now) options.timestamp = new Date(req.now)
    const value = await (await evaluate(tree, options)).get()
    return `{"value":${plain(value)}}`
  } catch (e) {
    return JSON.stringify({error: `${e.name}: ${e.message}`})
  }
}

// Answers are written in chunks: once the requests that have arrived are all
// answered (setImmediate runs when node would wait for more input), or every
// 256 lines. One write a line would dominate the run time.
const out = []
let scheduled = false
function flush() {
  scheduled = false
  if (out.length === 0) return
  process.stdout.write(out.join('\n') + '\n')
  out.length = 0
}
const rl = createInterface({input: process.stdin, crlfDelay: Infinity})
for await (const line of rl) {
  if (line === '') continue
  out.push(await answer(line))
  if (out.length >= 256) flush()
  else if (!scheduled) {
    scheduled = true
    setImmediate(flush)
  }
}
flush()
