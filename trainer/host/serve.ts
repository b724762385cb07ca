// The trainer's side of the method table: one handler per method, each request's params checked
// before its handler runs and its result checked before it is sent, so the trainer answers only
// what the contract allows (contracts/trainer-rpc.ts).
import { ResponseError, type CancellationToken, type Disposable, type MessageConnection } from 'vscode-jsonrpc';
import { invalidParams, TrainerErrorCodes, type MethodSpec, type MethodTable, type ParamsOf, type ResultOf } from '../../contracts/trainer-rpc';
import { parseWith } from '../../contracts/parse';

export type Handlers<T> = {
  readonly [M in keyof T]: (params: ParamsOf<T[M]>, token: CancellationToken) => Promise<ResultOf<T[M]>>;
};

/** Runs one request's work: where the host logs it and maps what it throws to a JSON-RPC error. */
export type Around = <R>(name: string, work: () => Promise<R>) => Promise<R>;

/** Answers every method of `table` on `connection` with its handler; disposing stops answering. */
export function serve<T extends MethodTable<T>>(
  connection: MessageConnection,
  table: T,
  handlers: Handlers<T>,
  around: Around = (_name, work) => work(),
): Disposable {
  const registrations = (Object.keys(table) as (keyof T & string)[]).map((name) => {
    const spec: MethodSpec<ParamsOf<T[typeof name]>, ResultOf<T[typeof name]>> = table[name];
    const handler = handlers[name];
    return connection.onRequest(spec.type, (params: unknown, token: CancellationToken) =>
      around(name, async () => {
        const checked = parseWith(spec.params, params);
        if (!checked.ok) throw invalidParams(name, checked.error);
        const result = parseWith(spec.result, await handler(checked.value, token));
        if (!result.ok) throw new ResponseError(TrainerErrorCodes.failed, `the trainer produced an invalid ${name} result: ${result.error}`);
        return result.value;
      }),
    );
  });
  return { dispose: () => registrations.forEach((r) => r.dispose()) };
}
