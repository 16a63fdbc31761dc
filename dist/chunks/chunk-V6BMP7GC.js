import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
var e=["semver","none"],t=["deploy","promote","abort","status","plan"];export{e as a,t as b};
