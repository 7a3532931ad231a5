// Node work for the battery: Map, arrays, regular expressions, JSON,
// crypto hashes, Buffer. Usage: node work.js CORPUS OUTPUT
'use strict';
const fs = require('fs');
const crypto = require('crypto');

const text = fs.readFileSync(process.argv[2], 'latin1');
const words = text.toLowerCase().match(/[a-z]+/g) || [];
const freq = new Map();
for (const w of words) freq.set(w, (freq.get(w) || 0) + 1);
const sorted = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const doc = sorted.map(([w, n]) => ({ w, n, sha: crypto.createHash('sha256').update(w).digest('hex').slice(0, 12) }));
const json = JSON.stringify(doc, null, 1);
if (JSON.parse(json).length !== doc.length) throw new Error('json round trip');
const titled = text.replace(/\b(\w)(\w*)/g, (_, a, b) => a.toUpperCase() + b);
const buf = Buffer.from(titled, 'latin1');
fs.writeFileSync(process.argv[3], json);
console.log(`${words.length} words, ${freq.size} distinct`);
console.log('top: ' + sorted.slice(0, 5).map(([w, n]) => `${w}=${n}`).join(' '));
console.log('md5 titled: ' + crypto.createHash('md5').update(buf).digest('hex'));
