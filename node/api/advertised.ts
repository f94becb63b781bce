/**
 * The API URL a node advertises and prints: a reachable address, never the wildcard it
 * may listen on (0.0.0.0 / ::, which a peer or an SDK cannot connect to). For a wildcard
 * bind: the first non-internal IPv4 address of this machine (what LAN peers reach), else
 * loopback.
 */
import { networkInterfaces } from 'node:os';
import type { NetworkInterfaceInfo } from 'node:os';

export function advertisedApiUrl(port: number, boundHost: string, interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces): string {
  let host = boundHost;
  if (boundHost === '0.0.0.0' || boundHost === '::' || boundHost === '') {
    const all = Object.values(interfaces()).flatMap((l) => l ?? []);
    const lan = all.find((i) => i.family === 'IPv4' && !i.internal);
    host = lan?.address ?? '127.0.0.1';
  } else if (boundHost === 'localhost') host = '127.0.0.1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
