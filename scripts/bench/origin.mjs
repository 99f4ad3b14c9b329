// The local origin for the benchmark: a minimal HTTP server on loopback, in its own process so
// the load generator does not share its event loop. Prints its port, answers BODY to anything,
// which the load generator checks on every response (a 200 from anywhere else is an error).
import { createServer } from 'node:http';

const BODY = 'origin ok';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(BODY)) });
    res.end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(String(server.address().port)));
