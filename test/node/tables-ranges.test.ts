/**
 * Tables placed in different ranges (a split at `table:m` puts tables named
 * from "m" on into the second data range): each table's rows go to its
 * range's leader, a batch across the two tables becomes one command per
 * range, and an atomic batch must stay within one range.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { NodeStatus } from '../../src/api/http-api.ts';
import { TesseraClient } from '../../src/client/client.ts';
import { isTesseraError } from '../../src/core/errors.ts';
import { LocalCluster } from '../support/local-cluster.ts';

const TEST_TIMEOUT_MS = 120_000;
const cluster = new LocalCluster('tessera-table-ranges-', [1, 2, 3], ['table:m']);
let client: TesseraClient;

before(async () => {
  await cluster.init();
  await cluster.waitForLeader(30_000);
  client = new TesseraClient({ endpoints: [...cluster.nodes.values()].map((n) => n.http) });
});

after(async () => {
  await cluster.dispose();
});

test(
  'two tables in two ranges: rows, batches, atomic refusal',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const schema = (name: string) => ({
      name,
      primaryKey: [{ name: 'k', type: 'string' as const }],
    });
    await client.createTable(schema('apples'));
    await client.createTable(schema('pears'));
    const ranges = await client.ranges();
    assert.equal(ranges.length, 2, 'two data ranges');
    assert.equal(ranges[1]!.start, '\u0000table/m');
    await client.table('apples').putRow({ k: 'a1', n: 1n });
    await client.table('pears').putRow({ k: 'p1', n: 1n });
    // Each table's range committed its own row: compare the data ranges' commit indexes.
    const st = (await (
      await fetch(`http://${cluster.liveEndpoints()[0]}/v1/status`)
    ).json()) as NodeStatus;
    assert.deepEqual(
      st.ranges.filter((r) => r.kind === 'data').map((r) => r.start),
      ['', '\u0000table/m'],
    );
    const res = await fetch(`http://${cluster.liveEndpoints()[0]}/v1/tables/batch-write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        atomic: true,
        writes: [
          { table: 'apples', kind: 'put', row: { k: 'a2' } },
          { table: 'pears', kind: 'put', row: { k: 'p2' } },
        ],
      }),
    });
    const body = (await res.json()) as { code?: string; message?: string };
    assert.equal(body.code, 'INVALID_ARGUMENT');
    assert.match(body.message!, /one range/);
    // Not atomic, sent to one node: the range it leads applies; rows of the other
    // range fail on their own (NOT_LEADER) unless that node leads both.
    const raw = await fetch(`http://${cluster.liveEndpoints()[0]}/v1/tables/batch-write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        writes: [
          { table: 'apples', kind: 'put', row: { k: 'a3' } },
          { table: 'pears', kind: 'put', row: { k: 'p3' } },
        ],
      }),
    });
    const rawResults = (
      (await raw.json()) as { results: { ok?: boolean; error?: { code: string } }[] }
    ).results;
    assert.equal(rawResults.length, 2);
    for (const r of rawResults) assert.ok(r.ok === true || r.error?.code === 'NOT_LEADER');
    // The client sends a batch per table, each to its table's leader.
    const results = await client.batchWriteRows([
      { table: 'apples', kind: 'put', row: { k: 'a2', n: 2n } },
      { table: 'pears', kind: 'put', row: { k: 'p2', n: 2n } },
      {
        table: 'pears',
        kind: 'put',
        row: { k: 'p1', n: 9n },
        condition: { rowExistence: 'EXPECT_NOT_EXIST' },
      },
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ok', 'ok', 'CONDITION_FAILED'],
    );
    const atomicOne = await client.batchWriteRows(
      [
        { table: 'pears', kind: 'put', row: { k: 'p4' } },
        { table: 'pears', kind: 'delete', primaryKey: { k: 'p1' } },
      ],
      { atomic: true },
    );
    assert.ok(atomicOne.every((r) => r.ok));
    const gets = await client.batchGetRows([
      { table: 'apples', primaryKey: { k: 'a2' } },
      { table: 'pears', primaryKey: { k: 'p1' } },
      { table: 'ghost', primaryKey: { k: 'x' } },
    ]);
    assert.equal(gets[0]!.ok && gets[0]!.value?.columns.n?.[0]?.value, 2n);
    assert.ok(gets[1]!.ok && gets[1]!.value === null, 'deleted by the atomic batch');
    assert.ok(!gets[2]!.ok && gets[2]!.error.code === 'NOT_FOUND');
    assert.equal((await client.table('apples').getRow({ k: 'a2' }))?.columns.n?.[0]?.value, 2n);
    assert.equal((await client.table('pears').getRow({ k: 'p2' }))?.columns.n?.[0]?.value, 2n);
    await assert.rejects(
      client.table('ghost').getRow({ k: 'x' }),
      (e) => isTesseraError(e) && e.code === 'NOT_FOUND',
    );
  },
);
