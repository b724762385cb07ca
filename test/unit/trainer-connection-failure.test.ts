// Why a federation could not be reached, from the socket's error: the cause the extension turns into
// actions (Open Setting, Set Token, Retry) and the words the user reads.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { causeOf, connectionFailureMessage, failureFromClose } from '../../trainer/host/connection-failure';

test('socket errors map to their cause', () => {
  const cases: [string | null, string | null, string][] = [
    ['connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED', 'refused'],
    ['getaddrinfo ENOTFOUND no-such-host.invalid', 'ENOTFOUND', 'dns'],
    ['getaddrinfo EAI_AGAIN flaky-dns', 'EAI_AGAIN', 'dns'],
    ['self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
    ['unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
    ['write EPROTO 40B8…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', 'EPROTO', 'tls'],
    ['Unexpected server response: 401', null, 'auth'],
    ['connect ETIMEDOUT 10.0.0.1:7070', 'ETIMEDOUT', 'timeout'],
    [null, null, 'closed'],
    ['Unexpected server response: 502', null, 'other'],
  ];
  for (const [error, errorCode, cause] of cases) assert.equal(causeOf({ error, errorCode }), cause, `${error} (${errorCode})`);
});

test("a failure names the URL, the tries, the cause in words and the socket's own error", () => {
  const failure = failureFromClose('ws://127.0.0.1:1', {
    code: 1006,
    reason: '',
    error: 'connect ECONNREFUSED 127.0.0.1:1',
    errorCode: 'ECONNREFUSED',
    welcomed: false,
    attempt: 3,
  });
  assert.deepEqual(failure, { kind: 'connection', cause: 'refused', url: 'ws://127.0.0.1:1', attempts: 3, detail: 'connect ECONNREFUSED 127.0.0.1:1' });
  const message = connectionFailureMessage(failure);
  assert.match(message, /ws:\/\/127\.0\.0\.1:1 after 3 attempts: the connection was refused/);
  assert.match(message, /ECONNREFUSED 127\.0\.0\.1:1/);
});
