// Runs before every npm script, on whatever Node the machine has: the project's files are
// TypeScript that Node runs directly only from 22.18, and an older Node would otherwise die with
// a raw ERR_UNKNOWN_FILE_EXTENSION stack trace. Plain CommonJS, so any Node can read it.
'use strict';

const NEEDED = [22, 18];

/** The message for a Node older than NEEDED, or null when this one will do. */
function problem(version, execPath) {
  const [major, minor] = String(version).split('.').map(Number);
  if (major > NEEDED[0] || (major === NEEDED[0] && minor >= NEEDED[1])) return null;
  return [
    `System Design Lab needs Node.js ${NEEDED.join('.')} or newer (it runs its TypeScript files directly); this is Node ${version} (${execPath}).`,
    'Install Node 24 LTS, then run the command again:',
    '  with nvm:    nvm install 24 && nvm use 24        (the project has an .nvmrc)',
    // npm 11.19+ runs a dependency's install script (node@24 fetches its binary in one) only
    // when a package.json allows it, and refuses --allow-scripts for such an install.
    `  without it:  mkdir -p ~/.node24 && echo '{"allowScripts":{"node":true}}' > ~/.node24/package.json`,
    '               npm install --prefix ~/.node24 node@24 && export PATH="$HOME/.node24/node_modules/node/bin:$PATH"',
  ].join('\n');
}

module.exports = { problem, NEEDED };

if (require.main === module) {
  const message = problem(process.versions.node, process.execPath);
  if (message) {
    console.error(message);
    process.exit(1);
  }
}
