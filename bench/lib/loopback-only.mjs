// Preloaded into peer servers that bind every interface by default (the Portkey gateway):
// a listen() without a host binds 127.0.0.1, so benchmarks never open a port beyond loopback.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
    if (args[1] === undefined) args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  } else if (
    typeof args[0] === 'object' &&
    args[0] !== null &&
    args[0].host === undefined &&
    args[0].path === undefined
  ) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
