// A store URL as logs and errors show it: the password never (it belongs in PGPASSWORD or a password
// file), nor any query parameter, which may carry one.

/** Whether `spec` names a PostgreSQL store rather than a folder. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** postgres://user@host:port/database, whatever else the URL held. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** A password inside the URL itself, where a command line or a log would show it. */
export function urlHasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== '' || u.searchParams.has('password');
  } catch {
    return false;
  }
}
