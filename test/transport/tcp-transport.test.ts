// The TCP peer transport over loopback: delivery both ways, reconnection
// after a peer restarts, bounded send queues, and isolation of bad inbound
// connections. No timing assertions: every wait polls a condition with a
// bounded deadline.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';

import { crc32c } from '../../src/core/crc32c.ts';
import { logIndex, nodeId, rangeId, term, type NodeId, type RangeId } from '../../src/core/ids.ts';
import type { Message, MsgApp, MsgSnap } from '../../src/raft/types.ts';
import {
  encodeFrame,
  encodeHelloFrame,
  encodeSnapshotChunkFrame,
  FRAME_HEADER_BYTES,
} from '../../src/transport/frame.ts';
import { snapshotChunkHead, type SnapshotChunk } from '../../src/transport/snapshot-chunk.ts';
import {
  TcpTransport,
  type PeerAddress,
  type TcpTransportOptions,
  type TransportLogger,
} from '../../src/transport/tcp-transport.ts';
import { SAMPLE_MESSAGES } from './samples.ts';

const HOST = '127.0.0.1';
const CLUSTER = 'test-cluster';
const WAIT_MS_MAX = 5_000;
const POLL_MS = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; fails after WAIT_MS_MAX. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let waited = 0; waited <= WAIT_MS_MAX; waited += POLL_MS) {
    if (cond()) return;
    await sleep(POLL_MS);
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface Received {
  readonly range: RangeId;
  readonly msg: Message;
}

interface LogLine {
  readonly level: 'warn' | 'info';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A transport under test, with what it received and logged. */
interface Node {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly received: Received[];
  /** Every `onPeerHeard` call, in order. */
  readonly heard: NodeId[];
  readonly logs: LogLine[];
  readonly port: number;
}

const opened: TcpTransport[] = [];
const rawSockets: net.Socket[] = [];

after(async () => {
  for (const s of rawSockets) s.destroy();
  await Promise.all(opened.map((t) => t.close()));
});

async function startNode(
  id: number,
  port = 0,
  extra: Partial<TcpTransportOptions> = {},
): Promise<Node> {
  const received: Received[] = [];
  const heard: NodeId[] = [];
  const logs: LogLine[] = [];
  const logger: TransportLogger = {
    warn: (obj, msg) => logs.push({ level: 'warn', obj: { ...obj }, msg }),
    info: (obj, msg) => logs.push({ level: 'info', obj: { ...obj }, msg }),
  };
  const transport = new TcpTransport({
    nodeId: nodeId(id),
    clusterId: CLUSTER,
    onMessage: (range, msg) => received.push({ range, msg }),
    onPeerHeard: (peer) => heard.push(peer),
    logger,
    backoffMsMin: 10,
    backoffMsMax: 200,
    ...extra,
  });
  opened.push(transport);
  const bound = await transport.listen(HOST, port);
  return { id: nodeId(id), transport, received, heard, logs, port: bound };
}

function book(...nodes: Node[]): Map<NodeId, PeerAddress> {
  return new Map(nodes.map((n) => [n.id, { host: HOST, port: n.port }]));
}

function heartbeat(from: NodeId, to: NodeId, sentTick: number): Message {
  return {
    type: 'heartbeat',
    from,
    to,
    term: term(1),
    commit: logIndex(0),
    context: '',
    sentTick,
  };
}

/** A port with nothing listening on it (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((r) => server.close(() => r()));
  return address.port;
}

/** Opens a raw socket to `node`, writes `bytes`, and resolves once the server closed it. */
async function writeRawAndAwaitClose(node: Node, bytes: Uint8Array): Promise<void> {
  const socket = net.connect({ host: HOST, port: node.port });
  rawSockets.push(socket);
  socket.on('error', () => {}); // a reset from the server is expected
  socket.resume();
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write(bytes);
  await closed;
}

function helloFrom(id: number, cluster = CLUSTER): Uint8Array {
  return encodeHelloFrame({ node: nodeId(id), cluster });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** Nodes 1 and 2, with 1 connected to 2: its first heartbeat was delivered. */
async function connectedPair(): Promise<{ a: Node; b: Node }> {
  const a = await startNode(1);
  const b = await startNode(2);
  a.transport.setAddressBook(book(b));
  a.transport.send(b.id, rangeId(1), heartbeat(a.id, b.id, 0));
  await waitFor(() => b.received.length === 1, 'the connection to be up');
  return { a, b };
}

const BAD_FRAME_WARNING = 'closing connection: bad frame';

/**
 * Writes `bytes` (the attack `name`) on a raw connection to `node`, waits
 * for it to be closed and counted as a bad frame, and answers the warning
 * logged for it.
 */
async function badFrameWarning(node: Node, name: string, bytes: Uint8Array): Promise<LogLine> {
  const badFrames = node.transport.stats().badFrames;
  const warnings = node.logs.filter((l) => l.msg === BAD_FRAME_WARNING).length;
  await writeRawAndAwaitClose(node, bytes);
  await waitFor(
    () => node.transport.stats().badFrames === badFrames + 1,
    `badFrames after ${name}`,
  );
  const warning = node.logs.filter((l) => l.msg === BAD_FRAME_WARNING)[warnings];
  assert.ok(warning !== undefined, `warning logged for ${name}`);
  return warning;
}

describe('TcpTransport', () => {
  it('delivers messages both ways, every type, in order', async () => {
    const a = await startNode(1);
    const b = await startNode(2);
    a.transport.setAddressBook(book(b));
    b.transport.setAddressBook(book(a));

    const ab = SAMPLE_MESSAGES.map((m) => ({ ...m, from: a.id, to: b.id }) as Message);
    const ba = SAMPLE_MESSAGES.map((m) => ({ ...m, from: b.id, to: a.id }) as Message);
    ab.forEach((m, i) => a.transport.send(b.id, rangeId(i), m));
    ba.forEach((m, i) => b.transport.send(a.id, rangeId(100 + i), m));

    await waitFor(() => b.received.length === ab.length, 'b to receive');
    await waitFor(() => a.received.length === ba.length, 'a to receive');
    assert.deepEqual(
      b.received,
      ab.map((msg, i) => ({ range: rangeId(i), msg })),
    );
    assert.deepEqual(
      a.received,
      ba.map((msg, i) => ({ range: rangeId(100 + i), msg })),
    );
    assert.equal(a.transport.stats().badFrames, 0);
    assert.deepEqual(a.transport.stats().dropped, {});
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('reconnects to a peer that restarts on the same port', async () => {
    const a = await startNode(1);
    const b1 = await startNode(2);
    a.transport.setAddressBook(book(b1));
    a.transport.send(b1.id, rangeId(1), heartbeat(a.id, b1.id, 1));
    await waitFor(() => b1.received.length === 1, 'first delivery');

    await b1.transport.close();
    const b2 = await startNode(2, b1.port);
    // Messages sent around the restart may be lost; keep sending until one arrives.
    for (let tick = 2; b2.received.length === 0 && tick < WAIT_MS_MAX / 20; tick++) {
      a.transport.send(b2.id, rangeId(1), heartbeat(a.id, b2.id, tick));
      await sleep(20);
    }
    await waitFor(() => b2.received.length > 0, 'delivery after restart');
    const before = b2.received.length;
    a.transport.send(b2.id, rangeId(1), heartbeat(a.id, b2.id, 100_000));
    await waitFor(
      () => b2.received.some((r) => r.msg.type === 'heartbeat' && r.msg.sentTick === 100_000),
      'the next message after reconnecting',
    );
    assert.ok(b2.received.length > before);
    await Promise.all([a.transport.close(), b2.transport.close()]);
  });

  it('bounds the send queue by messages while the peer is down, dropping and counting', async () => {
    const deadPort = await freePort();
    const a = await startNode(1, 0, { sendQueueMsgsMax: 10 });
    const peer = nodeId(2);
    a.transport.setAddressBook(new Map([[peer, { host: HOST, port: deadPort }]]));
    for (let i = 0; i < 100; i++) a.transport.send(peer, rangeId(1), heartbeat(a.id, peer, i));
    const stats = a.transport.stats();
    assert.equal(stats.queuedMsgs[peer], 10);
    assert.equal(stats.dropped[peer], 90);
    await a.transport.close();
  });

  it('bounds the send queue by bytes, and drops messages to unknown peers or too large', async () => {
    const deadPort = await freePort();
    const bytesMax = 10_000;
    const a = await startNode(1, 0, {
      sendQueueBytesMax: bytesMax,
      frameBytesMax: 5_000,
      snapshotChunkBytes: 4_000, // the ~3 KB snapshots below travel whole, as plain messages
    });
    const peer = nodeId(2);
    a.transport.setAddressBook(new Map([[peer, { host: HOST, port: deadPort }]]));
    const snap = { ...(SAMPLE_MESSAGES[6] as MsgSnap), from: a.id, to: peer }; // ~3 KB
    for (let i = 0; i < 50; i++) a.transport.send(peer, rangeId(1), snap);
    const stats = a.transport.stats();
    assert.ok(stats.queuedBytes[peer]! <= bytesMax, `queued ${stats.queuedBytes[peer]} bytes`);
    assert.equal(stats.queuedMsgs[peer]! + stats.dropped[peer]!, 50);
    assert.ok(stats.dropped[peer]! >= 46);

    // Larger than a frame and not a snapshot (those travel in chunks): cannot be sent.
    const huge: MsgApp = {
      ...(SAMPLE_MESSAGES[0] as MsgApp),
      from: a.id,
      to: peer,
      entries: [
        { term: term(7), index: logIndex(11), type: 'normal', data: new Uint8Array(6_000) },
      ],
    };
    a.transport.send(peer, rangeId(1), huge);
    assert.equal(a.transport.stats().dropped[peer], stats.dropped[peer]! + 1);
    assert.ok(a.logs.some((l) => l.level === 'warn' && l.obj['code'] === 'REQUEST_TOO_LARGE'));

    const stranger = nodeId(9);
    a.transport.send(stranger, rangeId(1), heartbeat(a.id, stranger, 1));
    assert.equal(a.transport.stats().dropped[stranger], 1);
    await a.transport.close();
    a.transport.send(peer, rangeId(1), heartbeat(a.id, peer, 1)); // after close: dropped, no throw
  });

  it('closes only the connection that sends a bad frame, and keeps serving others', async () => {
    const { a, b } = await connectedPair();

    const badPayload = Uint8Array.from([0xc1, 0xff, 0x00]);
    const validCrcGarbage = new Uint8Array(FRAME_HEADER_BYTES + badPayload.length);
    new DataView(validCrcGarbage.buffer).setUint32(0, badPayload.length);
    new DataView(validCrcGarbage.buffer).setUint32(4, crc32c(badPayload));
    validCrcGarbage.set(badPayload, FRAME_HEADER_BYTES);
    const badChecksum = encodeFrame({ range: rangeId(1), msg: heartbeat(nodeId(3), b.id, 1) });
    badChecksum[FRAME_HEADER_BYTES + 2] = badChecksum[FRAME_HEADER_BYTES + 2]! ^ 0x40;
    const fourGiB = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(fourGiB.buffer).setUint32(0, 0xffff_ffff);
    const misaddressed = encodeFrame({
      range: rangeId(1),
      msg: heartbeat(nodeId(3), nodeId(7), 1),
    });

    const attacks: [string, Uint8Array, string | null][] = [
      ['ascii garbage', new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), null],
      [
        'garbage msgpack with a valid checksum',
        concat(helloFrom(3), validCrcGarbage),
        'INVALID_ARGUMENT',
      ],
      ['a bad checksum', concat(helloFrom(3), badChecksum), 'CORRUPTION'],
      ['a 4 GiB length', concat(helloFrom(3), fourGiB), 'REQUEST_TOO_LARGE'],
      ['a bad checksum before any handshake', badChecksum, 'CORRUPTION'],
      [
        'a message not addressed to this node',
        concat(helloFrom(3), misaddressed),
        'INVALID_ARGUMENT',
      ],
    ];
    for (const [name, bytes, code] of attacks) {
      const warning = await badFrameWarning(b, name, bytes);
      assert.equal(warning.level, 'warn');
      if (code !== null) assert.equal(warning.obj['code'], code, name);
    }

    const rejected = b.transport.stats().rejectedHandshakes;
    await writeRawAndAwaitClose(b, helloFrom(3, 'other-cluster'));
    assert.equal(b.transport.stats().rejectedHandshakes, rejected + 1);

    // The well-behaved peer's connection was never touched.
    a.transport.send(b.id, rangeId(1), heartbeat(a.id, b.id, 2));
    await waitFor(() => b.received.length === 2, 'delivery after the attacks');
    assert.equal(b.received.length, 2, 'nothing from the attackers was delivered');
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('releases every socket and timer on close', async () => {
    const tcpHandles = (): number =>
      process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
    await waitFor(() => tcpHandles() === 0, 'earlier tests to release their sockets');
    const a = await startNode(1);
    const b = await startNode(2);
    const deadPort = await freePort();
    a.transport.setAddressBook(new Map([...book(b), [nodeId(3), { host: HOST, port: deadPort }]]));
    b.transport.setAddressBook(book(a));
    a.transport.send(b.id, rangeId(1), heartbeat(a.id, b.id, 1));
    a.transport.send(nodeId(3), rangeId(1), heartbeat(a.id, nodeId(3), 1)); // retrying with backoff
    b.transport.send(a.id, rangeId(1), heartbeat(b.id, a.id, 1));
    await waitFor(() => a.received.length === 1 && b.received.length === 1, 'traffic');
    assert.ok(tcpHandles() > 0);
    await Promise.all([a.transport.close(), b.transport.close()]);
    await a.transport.close(); // idempotent
    await waitFor(() => tcpHandles() === 0, 'all sockets closed');
  });
});

/** A snapshot message of `bytes` pseudo-random bytes. */
function snapshotMessage(from: NodeId, to: NodeId, bytes: number): MsgSnap {
  const data = new Uint8Array(bytes);
  for (let i = 0, x = 12345; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const sample = SAMPLE_MESSAGES[6] as MsgSnap;
  return { ...sample, from, to, snapshot: { ...sample.snapshot, data } };
}

/** A hand-made chunk of a snapshot from `from` to `to`, for protocol violations. */
function chunkFrame(
  from: NodeId,
  to: NodeId,
  fields: Partial<SnapshotChunk> & Pick<SnapshotChunk, 'id' | 'index' | 'count' | 'totalBytes'>,
): Uint8Array {
  const last = fields.index === fields.count - 1;
  const head =
    fields.index === 0
      ? snapshotChunkHead({ range: rangeId(5), msg: snapshotMessage(from, to, 0) })
      : null;
  return encodeSnapshotChunkFrame({
    data: new Uint8Array(0),
    head,
    crc: last ? 0 : null,
    ...fields,
  });
}

/** Waits for each turn of the event loop. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('TcpTransport: coalescing, chunked snapshots, keepalives', () => {
  it('coalesces the messages of many ranges sent in one turn into one frame, in order', async () => {
    const { a, b } = await connectedPair();

    const before = a.transport.stats();
    const framesReceived = b.transport.stats().framesReceived;
    const sent: Received[] = [];
    for (let i = 0; i < 300; i++) {
      const range = rangeId(1 + (i % 30)); // 30 ranges, 10 heartbeats each
      const msg = heartbeat(a.id, b.id, i + 1);
      sent.push({ range, msg });
      a.transport.send(b.id, range, msg);
    }
    await waitFor(() => b.received.length === 301, 'the batch');
    assert.deepEqual(b.received.slice(1), sent);
    const after = a.transport.stats();
    assert.equal(after.framesSent - before.framesSent, 1);
    assert.equal(after.envelopesSent - before.envelopesSent, 300);
    assert.equal(b.transport.stats().framesReceived - framesReceived, 1);
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('splits a turn into several frames at frameEnvelopesMax and frameBytesMax', async () => {
    const a = await startNode(1, 0, {
      frameEnvelopesMax: 10,
      frameBytesMax: 4_096,
      snapshotChunkBytes: 1_024,
      keepaliveMs: 0,
    });
    const b = await startNode(2, 0, { frameBytesMax: 4_096, snapshotChunkBytes: 1_024 });
    a.transport.setAddressBook(book(b));

    for (let i = 0; i < 35; i++) a.transport.send(b.id, rangeId(i), heartbeat(a.id, b.id, i));
    await waitFor(() => b.received.length === 35, 'the heartbeats');
    assert.equal(a.transport.stats().framesSent, 4); // 10 + 10 + 10 + 5
    assert.equal(b.transport.stats().framesReceived, 4);

    // ~1.1 KB each: three fit in a 4 KiB frame, a fourth does not.
    const app = (i: number): MsgApp => ({
      ...(SAMPLE_MESSAGES[0] as MsgApp),
      from: a.id,
      to: b.id,
      entries: [{ term: term(7), index: logIndex(i), type: 'normal', data: new Uint8Array(1_100) }],
    });
    for (let i = 0; i < 9; i++) a.transport.send(b.id, rangeId(i), app(i));
    await waitFor(() => b.received.length === 44, 'the appends');
    assert.equal(a.transport.stats().framesSent, 4 + 3);
    assert.equal(a.transport.stats().envelopesSent, 44);
    assert.deepEqual(
      b.received.map((r) => r.range),
      [...Array(35).keys(), ...Array(9).keys()].map((i) => rangeId(i)),
    );
    assert.deepEqual(a.transport.stats().dropped, {});
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('streams a 10 MiB snapshot in chunks, intact, with heartbeats flowing between chunks', async () => {
    const { a, b } = await connectedPair();

    const snap = snapshotMessage(a.id, b.id, 10 * 1024 * 1024);
    a.transport.send(b.id, rangeId(7), snap);
    // One heartbeat per turn while the snapshot streams; bounded in count and time.
    const isSnap = (r: Received): boolean => r.msg.type === 'snap';
    const deadline = Date.now() + WAIT_MS_MAX;
    let tick = 1;
    for (; !b.received.some(isSnap) && tick < 100_000 && Date.now() < deadline; tick++) {
      a.transport.send(b.id, rangeId(1), heartbeat(a.id, b.id, tick));
      await nextTurn();
    }
    await waitFor(() => b.received.some(isSnap), 'the snapshot');

    const delivered = b.received.filter(isSnap);
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]!.range, rangeId(7));
    assert.deepEqual(delivered[0]!.msg, snap);
    const before = b.received.findIndex(isSnap);
    const overtaking = b.received.slice(1, before).filter((r) => r.msg.type === 'heartbeat');
    assert.ok(overtaking.length > 0, 'heartbeats sent after the snapshot arrived before it');
    const stats = a.transport.stats();
    assert.equal(stats.snapshotChunksSent, 10);
    assert.equal(stats.snapshotsSent, 1);
    assert.equal(b.transport.stats().snapshotChunksReceived, 10);
    assert.equal(b.transport.stats().badFrames, 0);
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('drops a snapshot above snapshotBytesMax at the sender, and too many waiting ones', async () => {
    const a = await startNode(1, 0, {
      snapshotBytesMax: 64 * 1024,
      snapshotChunkBytes: 16 * 1024,
      snapshotSendsMax: 1,
    });
    const peer = nodeId(2);
    a.transport.setAddressBook(new Map([[peer, { host: HOST, port: await freePort() }]]));
    a.transport.send(peer, rangeId(1), snapshotMessage(a.id, peer, 64 * 1024 + 1));
    assert.equal(a.transport.stats().dropped[peer], 1);
    assert.ok(a.logs.some((l) => l.obj['code'] === 'REQUEST_TOO_LARGE'));
    const small = { ...snapshotMessage(a.id, peer, 64 * 1024), to: peer };
    a.transport.send(peer, rangeId(1), small);
    a.transport.send(peer, rangeId(2), small);
    assert.equal(a.transport.stats().dropped[peer], 2);
    assert.equal(a.transport.stats().queuedMsgs[peer], 1);
    await a.transport.close();
  });

  it('closes only the connection whose chunks break the rules, and keeps serving', async () => {
    const a = await startNode(1);
    const b = await startNode(2, 0, { snapshotBytesMax: 64 * 1024, snapshotPartialsMax: 2 });
    a.transport.setAddressBook(book(b));
    const evil = nodeId(3);
    const kb = new Uint8Array(1024);

    /** Node 3's hello, then its snapshot chunks to `to`. */
    const fromEvil = (to: NodeId, ...chunks: Parameters<typeof chunkFrame>[2][]): Uint8Array =>
      concat(helloFrom(3), ...chunks.map((fields) => chunkFrame(evil, to, fields)));

    const attacks: [string, Uint8Array, string][] = [
      [
        'a wrong whole-data checksum',
        fromEvil(
          b.id,
          { id: 1, index: 0, count: 2, totalBytes: 2048, data: kb },
          { id: 1, index: 1, count: 2, totalBytes: 2048, data: kb, crc: 7 },
        ),
        'CORRUPTION',
      ],
      [
        'an out-of-order chunk',
        fromEvil(
          b.id,
          { id: 1, index: 0, count: 3, totalBytes: 3072, data: kb },
          { id: 1, index: 2, count: 3, totalBytes: 3072, data: kb },
        ),
        'INVALID_ARGUMENT',
      ],
      [
        'inconsistent totals',
        fromEvil(
          b.id,
          { id: 1, index: 0, count: 3, totalBytes: 3072, data: kb },
          { id: 1, index: 1, count: 3, totalBytes: 4096, data: kb },
        ),
        'INVALID_ARGUMENT',
      ],
      [
        'a total above snapshotBytesMax',
        fromEvil(b.id, { id: 1, index: 0, count: 100, totalBytes: 1 << 30, data: kb }),
        'REQUEST_TOO_LARGE',
      ],
      [
        'too many partial snapshots',
        fromEvil(
          b.id,
          { id: 1, index: 0, count: 2, totalBytes: 2048, data: kb },
          { id: 2, index: 0, count: 2, totalBytes: 2048, data: kb },
          { id: 3, index: 0, count: 2, totalBytes: 2048, data: kb },
        ),
        'RESOURCE_EXHAUSTED',
      ],
      [
        'a chunk not addressed to this node',
        fromEvil(nodeId(9), { id: 1, index: 0, count: 2, totalBytes: 2048, data: kb }),
        'INVALID_ARGUMENT',
      ],
    ];
    for (const [name, bytes, code] of attacks) {
      const warning = await badFrameWarning(b, name, bytes);
      assert.equal(warning.obj['code'], code, name);
    }
    assert.equal(b.received.length, 0, 'nothing from the attacker was delivered');

    // The well-behaved peer is served, and node 3 is heard again once it reconnects and behaves.
    a.transport.send(b.id, rangeId(1), heartbeat(a.id, b.id, 1));
    await waitFor(() => b.received.length === 1, 'delivery from the well-behaved peer');
    const data = Uint8Array.from({ length: 2048 }, (_, i) => i & 0xff);
    const good = fromEvil(
      b.id,
      { id: 1, index: 0, count: 2, totalBytes: 2048, data: data.subarray(0, 1024) },
      { id: 1, index: 1, count: 2, totalBytes: 2048, data: data.subarray(1024), crc: crc32c(data) },
    );
    const socket = net.connect({ host: HOST, port: b.port });
    rawSockets.push(socket);
    socket.write(good);
    await waitFor(() => b.received.length === 2, 'the snapshot of the reconnected peer');
    const snap = b.received[1]!.msg;
    assert.ok(snap.type === 'snap');
    assert.deepEqual(snap.snapshot.data, data);
    socket.destroy();
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('sends keepalives on an idle link, and the receiver reports the peer as heard', async () => {
    const a = await startNode(1, 0, { keepaliveMs: 30 });
    const b = await startNode(2, 0, { keepaliveMs: 30 });
    // Only the address books: no message is ever sent.
    a.transport.setAddressBook(book(a, b));
    b.transport.setAddressBook(book(a, b));
    await waitFor(
      () =>
        a.transport.stats().keepalivesReceived >= 3 && b.transport.stats().keepalivesReceived >= 3,
      'keepalives both ways',
    );
    assert.ok(a.heard.length >= 2 && a.heard.every((p) => p === b.id), `a heard ${a.heard}`);
    assert.ok(b.heard.length >= 2 && b.heard.every((p) => p === a.id), `b heard ${b.heard}`);
    assert.ok(a.transport.stats().keepalivesSent >= 3);
    assert.equal(a.received.length + b.received.length, 0);
    assert.deepEqual(
      Object.keys(a.transport.stats().queuedMsgs),
      [String(b.id)],
      'no link to self',
    );
    await Promise.all([a.transport.close(), b.transport.close()]);
  });

  it('sends no keepalive and opens no connection when keepaliveMs is 0', async () => {
    const a = await startNode(1, 0, { keepaliveMs: 0 });
    const b = await startNode(2, 0, { keepaliveMs: 0 });
    a.transport.setAddressBook(book(b));
    await sleep(100);
    assert.equal(a.transport.stats().keepalivesSent, 0);
    assert.equal(b.heard.length, 0);
    await Promise.all([a.transport.close(), b.transport.close()]);
  });
});
