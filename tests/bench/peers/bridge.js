#!/usr/bin/env node
// A small WebSocket <-> MQTT bridge (ws + mqtt.js) speaking the part of
// ferrymq's JSON protocol (proto/PROTOCOL.md sections 3-4) that
// ferrymq-bench drives: subscribe / subscribed, unsubscribe / unsubscribed,
// publish (puback with an id), message delivery, ping / pong, topic= on the
// upgrade URL. It is the comparison that issue 11 asks for, written the way
// a small Node.js service would be: one MQTT connection shared by every
// client, reference-counted broker subscriptions, one JSON encoding per
// message. Not a product: no auth, no limits, no retained-message rules.
//
//   node bridge.js --port 0 --broker mqtt://127.0.0.1:1883 [--path /mqtt]
//
// Logs "listening on 127.0.0.1:PORT" and "broker connected: URL" on stderr
// (tests/bench/run waits for both).
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');
const mqtt = require('mqtt');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const host = '127.0.0.1';
const port = Number(arg('port', '8080'));
const brokerUrl = arg('broker', 'mqtt://127.0.0.1:1883');
const path = arg('path', '/mqtt');

function log(msg) {
  process.stderr.write(`level=info msg="${msg}"\n`);
}

// --- subscriptions: filter -> { clients: Set, granted: bool, waiting: [] } ---
const exact = new Map();      // filters without wildcards, found by topic
const wild = new Map();       // filters with + or #, matched one by one
const broker = mqtt.connect(brokerUrl, {
  clientId: `fmqb-node-bridge-${process.pid}`,
  clean: true,
  keepalive: 30,
  reconnectPeriod: 1000,
});

function isWild(f) {
  return f.includes('+') || f.includes('#');
}

function table(f) {
  return isWild(f) ? wild : exact;
}

function matches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function reply(ws, obj, id) {
  if (id !== undefined) obj.id = id;
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(obj));
}

function error(ws, code, message, id) {
  reply(ws, { type: 'error', code, message }, id);
}

function subscribe(ws, filter, qos, id) {
  const t = table(filter);
  let sub = t.get(filter);
  ws.subs.add(filter);
  if (sub) {
    sub.clients.add(ws);
    if (sub.granted) reply(ws, { type: 'subscribed', topic: filter, qos: sub.qos }, id);
    else sub.waiting.push([ws, id]);
    return;
  }
  sub = { clients: new Set([ws]), granted: false, qos, waiting: [[ws, id]] };
  t.set(filter, sub);
  broker.subscribe(filter, { qos }, (err, granted) => {
    const g = granted && granted[0] ? granted[0].qos : 128;
    if (err || g === 128) {
      for (const [w, i] of sub.waiting) error(w, 'forbidden', 'subscription refused', i);
      t.delete(filter);
      return;
    }
    sub.granted = true;
    sub.qos = g;
    for (const [w, i] of sub.waiting) reply(w, { type: 'subscribed', topic: filter, qos: g }, i);
    sub.waiting = [];
  });
}

function release(ws, filter) {
  const t = table(filter);
  const sub = t.get(filter);
  ws.subs.delete(filter);
  if (!sub) return;
  sub.clients.delete(ws);
  if (sub.clients.size === 0) {
    t.delete(filter);
    broker.unsubscribe(filter);
  }
}

broker.on('connect', () => log(`broker connected: ${brokerUrl}`));
broker.on('error', (e) => log(`broker error: ${e.message}`));
broker.on('message', (topic, payload, packet) => {
  const targets = new Set();
  const e = exact.get(topic);
  if (e && e.granted) for (const ws of e.clients) targets.add(ws);
  for (const [f, sub] of wild) {
    if (sub.granted && matches(f, topic)) for (const ws of sub.clients) targets.add(ws);
  }
  if (targets.size === 0) return;
  const text = JSON.stringify({
    type: 'message', topic, payload: payload.toString('utf8'),
    qos: packet.qos, retain: packet.retain,
  });
  for (const ws of targets) if (ws.readyState === ws.OPEN) ws.send(text);
});

// --- WebSocket clients ---
const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('upgrade required\n');
});
const wss = new WebSocketServer({ server, path, perMessageDeflate: false });

function onMessage(ws, data, isBinary) {
  if (isBinary) return error(ws, 'bad_request', 'binary frames are not supported here');
  let m;
  try {
    m = JSON.parse(data.toString('utf8'));
  } catch (e) {
    return error(ws, 'bad_json', 'not JSON');
  }
  if (m === null || typeof m !== 'object' || typeof m.type !== 'string') {
    return error(ws, 'bad_request', 'type missing');
  }
  const id = m.id;
  switch (m.type) {
    case 'subscribe':
      if (typeof m.topic !== 'string') return error(ws, 'bad_request', 'topic', id);
      return subscribe(ws, m.topic, m.qos | 0, id);
    case 'unsubscribe':
      if (typeof m.topic !== 'string') return error(ws, 'bad_request', 'topic', id);
      release(ws, m.topic);
      return reply(ws, { type: 'unsubscribed', topic: m.topic }, id);
    case 'publish': {
      if (typeof m.topic !== 'string' || isWild(m.topic)) {
        return error(ws, 'invalid_topic', 'topic', id);
      }
      let payload;
      if (m.payload_b64 !== undefined) payload = Buffer.from(m.payload_b64, 'base64');
      else if (typeof m.payload === 'string') payload = m.payload;
      else payload = JSON.stringify(m.payload);
      const opts = { qos: m.qos | 0, retain: !!m.retain };
      if (id === undefined) return broker.publish(m.topic, payload, opts);
      return broker.publish(m.topic, payload, opts, (err) => {
        if (err) error(ws, 'internal', err.message, id);
        else reply(ws, { type: 'puback' }, id);
      });
    }
    case 'ping':
      return reply(ws, { type: 'pong' }, id);
    default:
      return error(ws, 'unknown_type', m.type, id);
  }
}

wss.on('connection', (ws, req) => {
  ws.subs = new Set();
  ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
  ws.on('close', () => {
    for (const f of [...ws.subs]) release(ws, f);
  });
  ws.on('error', () => {});
  const q = new URL(req.url, 'http://x').searchParams;
  for (const t of q.getAll('topic')) subscribe(ws, t, 0, undefined);
});

server.listen(port, host, () => log(`listening on ${host}:${server.address().port}`));

function stop() {
  for (const ws of wss.clients) ws.terminate();
  server.close();
  broker.end(true, () => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
