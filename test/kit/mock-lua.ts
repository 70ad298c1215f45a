/**
 * Runs EVAL scripts for the mock Redis the way Redis 7 does, in a Lua VM kept per mock server
 * with compiled scripts cached (ioredis-mock builds a fresh VM and recompiles on every call,
 * about 14 ms each: slow enough to time out a correct Lua design).
 *
 * Redis semantics reproduced here (https://redis.io/docs/latest/develop/programmability/lua-api/):
 * - redis.call raises on a command error; redis.pcall returns {err=…}; nil bulk replies are false;
 *   status replies are {ok=…}; numbers in arguments are sent as strings.
 * - Replies: integers truncated, true -> 1, false/nil -> nil, {ok}/{err} tables, arrays stop at
 *   the first nil.
 * - Scripts may not create or read undeclared globals; KEYS and ARGV are set per call.
 * - redis.error_reply, redis.status_reply, redis.sha1hex, redis.log, cjson.encode/decode.
 */
import { createHash } from 'node:crypto';
import fengari from 'fengari';

const { lua, lauxlib, lualib, to_luastring: toLua, to_jsstring: toJs } = fengari as any;

/** A synchronous command: (client, name, args) -> reply, or throws a Redis error. */
export type CommandRunner = (name: string, args: string[]) => unknown;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

// Commands whose OK / type-name replies are status replies, which Lua sees as {ok=…}.
const STATUS_REPLIES = new Set([
  'set',
  'mset',
  'rename',
  'hmset',
  'ltrim',
  'lset',
  'setex',
  'psetex',
  'type',
  'ping',
  'flushdb',
  'watch',
  'unwatch',
  'select',
  'xgroup',
  'xsetid',
]);

const PRELUDE = `
redis = {}
redis.call = function(...) return __lab_call(true, ...) end
redis.pcall = function(...) return __lab_call(false, ...) end
redis.error_reply = function(message) return { err = message } end
redis.status_reply = function(message) return { ok = message } end
redis.sha1hex = function(text) return __lab_sha1(text) end
redis.log = function() end
redis.setresp = function() end
redis.set_repl = function() end
redis.replicate_commands = function() return true end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_ALL = 0, 1, 2, 2, 3
cjson = {}
cjson.encode = function(value) return __lab_json_encode(value) end
cjson.decode = function(text) return __lab_json_decode(text) end
cjson.null = __lab_json_null
setmetatable(_G, {
  __newindex = function(_, name) error("Script attempted to create global variable '" .. tostring(name) .. "'", 2) end,
  __index = function(_, name) error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2) end,
})
`;

class ScriptError extends Error {}

export class LuaEngine {
  private readonly L: any;
  private readonly compiled = new Map<string, number>();
  /** Scripts known to this mock server by SHA1 (EVAL and SCRIPT LOAD add to it). */
  readonly scripts = new Map<string, string>();
  private runCommand: CommandRunner | null = null;
  private readonly jsonNull = {};

  constructor() {
    this.L = lauxlib.luaL_newstate();
    lualib.luaL_openlibs(this.L);
    this.defineFunction('__lab_call', (L: any) => this.call(L));
    this.defineFunction('__lab_sha1', (L: any) => (lua.lua_pushstring(L, toLua(sha1(this.toStringArg(L, 1)))), 1));
    this.defineFunction(
      '__lab_json_encode',
      (L: any) => (lua.lua_pushstring(L, toLua(JSON.stringify(this.toJs(L, 1)))), 1),
    );
    this.defineFunction('__lab_json_decode', (L: any) => {
      let value: unknown;
      try {
        value = JSON.parse(this.toStringArg(L, 1));
      } catch (error) {
        return lauxlib.luaL_error(L, toLua(`Expected value but found invalid token: ${(error as Error).message}`));
      }
      this.pushJs(L, value);
      return 1;
    });
    lua.lua_pushlightuserdata(this.L, this.jsonNull);
    lua.lua_setglobal(this.L, toLua('__lab_json_null'));
    if (lauxlib.luaL_dostring(this.L, toLua(PRELUDE)) !== 0)
      throw new Error(`Lua prelude: ${toJs(lua.lua_tostring(this.L, -1))}`);
  }

  /**
   * Makes the engine a fresh server's: no script is known by SHA any more. Compiled chunks stay
   * cached, since a chunk depends only on its source and scripts cannot keep globals.
   */
  reset() {
    this.scripts.clear();
  }

  /** SCRIPT LOAD: remembers the script and returns its SHA1. */
  load(script: string): string {
    const sha = sha1(script);
    this.scripts.set(sha, script);
    return sha;
  }

  /** EVAL / EVALSHA / a defineCommand'd script. Synchronous, so atomic like Redis. */
  run(script: string, numberOfKeys: unknown, args: unknown[], runCommand: CommandRunner): unknown {
    const numKeys = Number(numberOfKeys);
    if (!Number.isInteger(numKeys) || numKeys < 0) throw new Error('ERR value is not an integer or out of range');
    if (numKeys > args.length) throw new Error("ERR Number of keys can't be greater than number of args");
    const L = this.L;
    const sha = this.load(script);
    let ref = this.compiled.get(sha);
    if (ref === undefined) {
      if (lauxlib.luaL_loadbuffer(L, toLua(script), null, toLua('@user_script')) !== 0) {
        const message = toJs(lua.lua_tostring(L, -1));
        lua.lua_pop(L, 1);
        throw new Error(`ERR Error compiling script (new function): ${message}`);
      }
      ref = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX) as number;
      this.compiled.set(sha, ref);
    }
    const strings = args.map(String);
    this.setGlobalArray('KEYS', strings.slice(0, numKeys));
    this.setGlobalArray('ARGV', strings.slice(numKeys));

    const top = lua.lua_gettop(L);
    this.runCommand = runCommand;
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, ref);
    const status = lua.lua_pcall(L, 0, 1, 0);
    this.runCommand = null;
    try {
      if (status !== 0) throw this.scriptError(L);
      return this.reply(L, -1);
    } finally {
      lua.lua_settop(L, top);
    }
  }

  private defineFunction(name: string, fn: (L: any) => number) {
    lua.lua_pushjsfunction(this.L, fn);
    lua.lua_setglobal(this.L, toLua(name));
  }

  private setGlobalArray(name: string, values: string[]) {
    const L = this.L;
    lua.lua_pushglobaltable(L);
    lua.lua_pushstring(L, toLua(name));
    lua.lua_createtable(L, values.length, 0);
    values.forEach((value, i) => {
      lua.lua_pushstring(L, toLua(value));
      lua.lua_rawseti(L, -2, i + 1);
    });
    lua.lua_rawset(L, -3);
    lua.lua_pop(L, 1);
  }

  private scriptError(L: any): Error {
    if (lua.lua_istable(L, -1)) {
      lua.lua_getfield(L, -1, toLua('err'));
      const message = lua.lua_isstring(L, -1) ? toJs(lua.lua_tostring(L, -1)) : 'ERR unknown error';
      return new Error(message);
    }
    const message = lua.lua_isstring(L, -1) ? toJs(lua.lua_tostring(L, -1)) : 'unknown error';
    return new ScriptError(`ERR user_script: ${message.replace(/^@?user_script:/, '')}`);
  }

  private toStringArg(L: any, index: number): string {
    if (lua.lua_type(L, index) === lua.LUA_TNUMBER) {
      // Redis formats Lua numbers with the shortest round-trip form, as JavaScript does.
      return lua.lua_isinteger(L, index) ? String(lua.lua_tointeger(L, index)) : String(lua.lua_tonumber(L, index));
    }
    if (lua.lua_type(L, index) === lua.LUA_TSTRING) return toJs(lua.lua_tostring(L, index));
    throw new ScriptError('Lua redis lib command arguments must be strings or integers');
  }

  /** redis.call / redis.pcall: (raise, command, ...args). */
  private call(L: any): number {
    const raise = lua.lua_toboolean(L, 1);
    const count = lua.lua_gettop(L);
    let failure: string | null = null;
    let reply: unknown;
    try {
      if (count < 2) throw new Error('ERR Please specify at least one argument for this redis lib call');
      const args: string[] = [];
      for (let i = 2; i <= count; i++) args.push(this.toStringArg(L, i));
      const name = args[0]!.toLowerCase();
      if (!this.runCommand) throw new Error('ERR redis.call outside a script');
      reply = this.runCommand(name, args.slice(1));
      if (reply === 'OK' || (typeof reply === 'string' && name === 'type')) {
        if (STATUS_REPLIES.has(name)) reply = { ok: reply };
      }
    } catch (error) {
      failure = String((error as Error).message ?? error);
      if (!/^[A-Z]+ /.test(failure)) failure = `ERR ${failure}`;
    }
    if (failure !== null) {
      lua.lua_createtable(L, 0, 1);
      lua.lua_pushstring(L, toLua(failure));
      lua.lua_setfield(L, -2, toLua('err'));
      if (raise) return lua.lua_error(L);
      return 1;
    }
    this.pushReply(L, reply);
    return 1;
  }

  /** A command's reply as a script sees it. */
  private pushReply(L: any, value: unknown): void {
    if (value === null || value === undefined) return lua.lua_pushboolean(L, false);
    if (typeof value === 'number')
      return Number.isInteger(value) ? lua.lua_pushinteger(L, value) : lua.lua_pushstring(L, toLua(String(value)));
    if (typeof value === 'string') return lua.lua_pushstring(L, toLua(value));
    if (typeof value === 'boolean') return lua.lua_pushinteger(L, value ? 1 : 0);
    if (Buffer.isBuffer(value)) return lua.lua_pushstring(L, toLua(value.toString()));
    if (Array.isArray(value)) {
      lua.lua_createtable(L, value.length, 0);
      value.forEach((item, i) => {
        this.pushReply(L, item);
        lua.lua_rawseti(L, -2, i + 1);
      });
      return;
    }
    const object = value as Record<string, unknown>;
    if ('ok' in object) {
      lua.lua_createtable(L, 0, 1);
      lua.lua_pushstring(L, toLua(String(object.ok)));
      lua.lua_setfield(L, -2, toLua('ok'));
      return;
    }
    // HGETALL and friends: a flat array of field, value.
    return this.pushReply(L, Object.entries(object).flat());
  }

  /** A JSON value as cjson.decode gives it. */
  private pushJs(L: any, value: unknown): void {
    if (value === null) return lua.lua_pushlightuserdata(L, this.jsonNull);
    if (typeof value === 'boolean') return lua.lua_pushboolean(L, value);
    if (typeof value === 'number')
      return Number.isInteger(value) ? lua.lua_pushinteger(L, value) : lua.lua_pushnumber(L, value);
    if (typeof value === 'string') return lua.lua_pushstring(L, toLua(value));
    if (Array.isArray(value)) {
      lua.lua_createtable(L, value.length, 0);
      value.forEach((item, i) => {
        this.pushJs(L, item);
        lua.lua_rawseti(L, -2, i + 1);
      });
      return;
    }
    lua.lua_createtable(L, 0, 0);
    for (const [key, item] of Object.entries(value as object)) {
      this.pushJs(L, item);
      lua.lua_setfield(L, -2, toLua(key));
    }
  }

  /** A Lua value as JSON data, for cjson.encode. */
  private toJs(L: any, index: number): unknown {
    const at = lua.lua_absindex(L, index);
    switch (lua.lua_type(L, at)) {
      case lua.LUA_TNIL:
        return null;
      case lua.LUA_TBOOLEAN:
        return lua.lua_toboolean(L, at);
      case lua.LUA_TNUMBER:
        return lua.lua_tonumber(L, at);
      case lua.LUA_TSTRING:
        return toJs(lua.lua_tostring(L, at));
      case lua.LUA_TLIGHTUSERDATA:
        return null;
      case lua.LUA_TTABLE: {
        const length = lua.lua_rawlen(L, at);
        const entries: Array<[unknown, unknown]> = [];
        lua.lua_pushnil(L);
        while (lua.lua_next(L, at) !== 0) {
          const key = lua.lua_type(L, -2) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, -2) : toJs(lua.lua_tostring(L, -2));
          entries.push([key, this.toJs(L, -1)]);
          lua.lua_pop(L, 1);
        }
        if (entries.length === 0) return {};
        if (length > 0 && entries.length === length)
          return Array.from({ length }, (_, i) => entries.find(([k]) => k === i + 1)?.[1] ?? null);
        return Object.fromEntries(entries.map(([k, v]) => [String(k), v]));
      }
      default:
        throw new ScriptError('Cannot serialise this value to JSON');
    }
  }

  /** The script's return value converted as Redis converts it for the client. */
  private reply(L: any, index: number): unknown {
    const at = lua.lua_absindex(L, index);
    switch (lua.lua_type(L, at)) {
      case lua.LUA_TNUMBER:
        return Math.trunc(lua.lua_tonumber(L, at));
      case lua.LUA_TSTRING:
        return toJs(lua.lua_tostring(L, at));
      case lua.LUA_TBOOLEAN:
        return lua.lua_toboolean(L, at) ? 1 : null;
      case lua.LUA_TTABLE: {
        lua.lua_getfield(L, at, toLua('err'));
        if (lua.lua_type(L, -1) === lua.LUA_TSTRING) {
          const message = toJs(lua.lua_tostring(L, -1));
          lua.lua_pop(L, 1);
          throw new Error(/^[A-Z]+ /.test(message) ? message : `ERR ${message}`);
        }
        lua.lua_pop(L, 1);
        lua.lua_getfield(L, at, toLua('ok'));
        if (lua.lua_type(L, -1) === lua.LUA_TSTRING) {
          const status = toJs(lua.lua_tostring(L, -1));
          lua.lua_pop(L, 1);
          return status;
        }
        lua.lua_pop(L, 1);
        const items: unknown[] = [];
        for (let i = 1; ; i++) {
          lua.lua_rawgeti(L, at, i);
          if (lua.lua_isnil(L, -1)) {
            lua.lua_pop(L, 1);
            break;
          }
          items.push(this.reply(L, -1));
          lua.lua_pop(L, 1);
        }
        return items;
      }
      default:
        return null;
    }
  }
}
