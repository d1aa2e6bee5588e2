// The socket.io peer of `go run ./scripts/bench chat`: plain room broadcast, as a Node
// chat server usually starts out. A client joins a room (event "join", acknowledged),
// then each "msg" event ({room, text}) is broadcast to everyone in the room, the sender
// included, and acknowledged to the sender. Nothing is stored, checked or rate limited.
//
//   node server.js [port]      (0 or nothing: any free port)
//
// Prints "listening http://127.0.0.1:<port>" once it accepts connections; stops on
// SIGTERM or SIGINT.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  // The benchmark's clients speak websocket from the start (no long-polling).
  transports: ['websocket'],
  serveClient: false,
});

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string') return;
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('msg', (msg, ack) => {
    const ok = msg && typeof msg.room === 'string' && socket.rooms.has(msg.room);
    if (ok) io.to(msg.room).emit('msg', msg);
    if (typeof ack === 'function') ack(ok ? { ok: true } : { error: 'not_in_room' });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${httpServer.address().port}`);
});

const stop = () => {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
