// memjs_check.js -- the binary client check of test_client_memjs.py: npm's
// memjs (binary protocol only, SASL PLAIN when CLIENT_USER and
// CLIENT_PASSWORD are set) against the server at argv[2] (host:port).
// memjs is found through NODE_PATH.  memjs 1.3 has no multi-get and no CAS
// writes; every other operation it has is checked.  Prints one line per
// check and exits 1 if any answer was wrong.
const memjs = require("memjs");
const assert = require("assert");

let failed = false;
function check(name, got, want) {
	try {
		assert.deepStrictEqual(got, want);
		console.log("ok   " + name);
	} catch (e) {
		console.log("FAIL " + name + ": got " +
		    JSON.stringify(got).slice(0, 200) + ", want " +
		    JSON.stringify(want).slice(0, 200));
		failed = true;
	}
}

// The error message of a promise that rejects, or its value.
async function outcome(p) {
	try {
		return await p;
	} catch (e) {
		return "error: " + e.message;
	}
}

function stats(mc) {
	return new Promise((resolve) => {
		mc.stats((err, server, st) => resolve(err ? { err: err.message } : st));
	});
}

async function main() {
	const opts = { timeout: 5, retries: 0, conntimeout: 5 };
	if (process.env.CLIENT_USER) {
		opts.username = process.env.CLIENT_USER;
		opts.password = process.env.CLIENT_PASSWORD;
	}
	const mc = memjs.Client.create(process.argv[2], opts);
	const B = (s) => Buffer.from(s, "latin1");
	const val = async (k) => {
		const r = await mc.get(k);
		return r.value === null ? null : r.value.toString("latin1");
	};

	check("flush", await mc.flush(), { [process.argv[2]]: true });
	check("set", await mc.set("k1", "v1", {}), true);
	check("get", await val("k1"), "v1");
	check("get flags", (await mc.get("k1")).flags, B("\0\0\0\0"));
	check("get miss", await val("nokey"), null);
	await mc.set("k2", "v2", {});
	check("add existing", await mc.add("k1", "x", {}), false);
	check("add new", await mc.add("k4", "v4", {}), true);
	check("replace missing", await mc.replace("k5", "x", {}), false);
	check("replace existing", await mc.replace("k4", "v4b", {}), true);
	check("get replaced", await val("k4"), "v4b");
	check("delete", await mc.delete("k4"), true);
	check("delete miss", await mc.delete("k4"), false);
	check("get deleted", await val("k4"), null);
	check("incr create", await mc.increment("n", 1, { initial: 10 }),
	    { success: true, value: 10 });
	check("incr", await mc.increment("n", 5, {}), { success: true, value: 15 });
	check("decr", await mc.decrement("n", 20, {}), { success: true, value: 0 });
	// memcached pads a shrunk counter with spaces ("0 "), cached does not
	check("get counter", (await val("n")).trim(), "0");
	await mc.set("s", "abc", {});
	check("append", await mc.append("s", "def"), true);
	// memjs 1.3.2's prepend sends opcode 0x0e (APPEND): a client bug
	check("prepend (appends)", await mc.prepend("s", "xyz"), true);
	check("get appended", await val("s"), "abcdefxyz");
	check("append miss", await outcome(mc.append("nos", "def")),
	    "error: MemJS APPEND: Item not stored");
	check("touch", await mc.touch("s", 100), true);
	check("touch miss", await mc.touch("nos", 100), false);
	const st = await stats(mc);
	check("stats pid", "pid" in st, true);
	check("stats curr_items", Number(st.curr_items) >= 1, true);
	const big = Buffer.alloc(500 * 1024);
	for (let i = 0; i < big.length; i++)
		big[i] = i * 7 % 251;
	check("set 500 KB", await mc.set("big", big, {}), true);
	check("get 500 KB", (await mc.get("big")).value.equals(big), true);
	const nasty = B("x\r\nflush_all\r\n\x80\x08\x00\x00 END\r\n");
	check("set binary-safe", await mc.set("nasty", nasty, {}), true);
	check("get binary-safe", (await mc.get("nasty")).value.equals(nasty), true);
	check("others survive", [await val("k1"), await val("k2"), await val("s")],
	    ["v1", "v2", "abcdefxyz"]);
	check("flush all", await mc.flush(), { [process.argv[2]]: true });
	check("get after flush", await val("k1"), null);
	mc.close();
	process.exit(failed ? 1 : 0);
}

main().catch((e) => {
	console.log("FAIL exception: " + (e && e.stack || e));
	process.exit(1);
});
