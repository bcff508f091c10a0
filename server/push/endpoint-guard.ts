import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Push endpoints are URLs a client gives us and the server then POSTs to: without a check, any
 * user could make the server call its own network (metadata services, databases, admin ports).
 * Only `https` on public addresses is accepted, checked when subscribing and again at every send,
 * on the very address the connection uses (a lookup that checks, so DNS cannot change its answer
 * between the check and the connect).
 */
const privateRanges = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 127],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv6');
}

/** Whether an address is one the public internet routes to us from (IPv4-mapped IPv6 judged as IPv4). */
export function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPublicAddress(mapped);
  const family = isIP(address);
  if (!family) return false;
  return !privateRanges.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export class EndpointRefused extends Error {}

export interface EndpointPolicy {
  /** `PUSH_ALLOW_LOCAL_ENDPOINTS`: `http` and private addresses too (tests, development). */
  allowLocal: boolean;
}

/** Refuses an endpoint URL by its form: the scheme, credentials, an address literal that is not public. */
export function checkEndpointForm(endpoint: string, { allowLocal }: EndpointPolicy): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new EndpointRefused('must be a URL');
  }
  if (url.protocol !== 'https:' && !(allowLocal && url.protocol === 'http:')) throw new EndpointRefused('must be an https URL');
  if (url.username || url.password) throw new EndpointRefused('must not carry credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowLocal && isIP(host) && !isPublicAddress(host)) throw new EndpointRefused('must be on a public address');
  return url;
}

/** Resolves the endpoint's host and refuses it unless every address is public. */
export async function checkEndpoint(endpoint: string, policy: EndpointPolicy): Promise<URL> {
  const url = checkEndpointForm(endpoint, policy);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (policy.allowLocal || isIP(host)) return url;
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(host, { all: true }, (err, found) => (err ? reject(err) : resolve(found))));
  if (!addresses.length || !addresses.every((a) => isPublicAddress(a.address))) throw new EndpointRefused('must resolve to public addresses only');
  return url;
}

/** A `lookup` for http(s).request that fails unless every address it resolves to is public. */
export function publicOnlyLookup({ allowLocal }: EndpointPolicy): LookupFunction | undefined {
  if (allowLocal) return undefined;
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      const refused = list.find((a) => !isPublicAddress(a.address));
      if (!list.length || refused) return callback(new EndpointRefused(`push endpoint ${hostname} resolves to a non-public address`), '', 0);
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}
