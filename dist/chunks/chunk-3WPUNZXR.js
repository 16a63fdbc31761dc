import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
var e="istio-canary";export{e as a};
