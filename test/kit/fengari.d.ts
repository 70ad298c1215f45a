// fengari (the Lua VM ioredis-mock uses) ships no types; mock-lua.ts calls its C-style API.
declare module 'fengari';
