// Apart from serve.ts, so that the primary of a cluster can use it without loading the service.

/** One line naming the setting, for a listener that could not bind (`PORT`/`HOST`, or `METRICS_PORT`/`METRICS_HOST`). */
export function listenFailure(err: NodeJS.ErrnoException, port: number, host: string, names = { port: 'PORT', host: 'HOST' }): string {
  const settings = host === '0.0.0.0' ? `${names.port}=${port}` : `${names.port}=${port}, ${names.host}=${host}`;
  if (err.code === 'EADDRINUSE') return `port ${port} is already in use (${settings})`;
  if (err.code === 'EACCES') return `not allowed to listen on port ${port} (${settings}; ports below 1024 need privileges)`;
  if (err.code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine (${settings})`;
  return `could not listen on ${host}:${port}: ${err.message} (${settings})`;
}
