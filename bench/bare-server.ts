// The ceiling of the stack: a bare node:https server that reads the request body and answers a
// fixed AdmissionReview response, with the same keep-alive settings as the webhook. Run as
// `node bench/bare-server.ts '<{"certFile","keyFile","responseFile"}>'`; prints its port.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

const options = JSON.parse(process.argv[2] ?? '{}') as {
  certFile: string;
  keyFile: string;
  responseFile: string;
};
const response = readFileSync(options.responseFile);
const server = createServer(
  { cert: readFileSync(options.certFile), key: readFileSync(options.keyFile), minVersion: 'TLSv1.2' },
  (req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': response.length });
      res.end(response);
    });
  },
);
server.keepAliveTimeout = 90_000;
server.headersTimeout = 91_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
