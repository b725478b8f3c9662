// node_fetch.js - the benchmark's Node peer, compared with `fetchtree run`
// (bench/transform.lua): fetch every URL in FILE (one per line) with
// CONC (default 64) requests in flight over kept-alive connections, decode
// each body as JSON, count the items. Prints "items N" on stdout; exits 1
// if any request failed.
//   node bench/node_fetch.js FILE [CONC]
'use strict';
const fs = require('fs');
const http = require('http');

const urls = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((u) => u.length > 0);
const conc = Number(process.argv[3] || 64);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
let next = 0;
let items = 0;
let failed = 0;

function get(url) {
  return new Promise((resolve) => {
    http.get(url, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode === 200 && JSON.parse(Buffer.concat(chunks).toString('utf8')).id !== undefined) items++;
        else failed++;
        resolve();
      });
      res.on('error', () => { failed++; resolve(); });
    }).on('error', () => { failed++; resolve(); });
  });
}

async function worker() {
  while (next < urls.length) await get(urls[next++]);
}

Promise.all(Array.from({ length: conc }, worker)).then(() => {
  agent.destroy();
  console.log(`items ${items}`);
  process.exitCode = failed === 0 ? 0 : 1;
});
