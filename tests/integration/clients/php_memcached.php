<?php
// php_memcached.php -- the binary client check of test_client_php.py:
// php-memcached (libmemcached) with Memcached::OPT_BINARY_PROTOCOL against
// the server at $argv[1] (host:port).  Prints one line per check and exits
// 1 if any answer was wrong.
$failed = false;
function check($name, $got, $want) {
	global $failed;
	if ($got === $want) {
		echo "ok   $name\n";
	} else {
		echo "FAIL $name: got " . substr(var_export($got, true), 0, 200) .
		    ", want " . substr(var_export($want, true), 0, 200) . "\n";
		$failed = true;
	}
}

list($host, $port) = explode(":", $argv[1]);
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->setOption(Memcached::OPT_SERIALIZER, Memcached::SERIALIZER_PHP);
$m->setOption(Memcached::OPT_RECV_TIMEOUT, 5000000);
$m->setOption(Memcached::OPT_SEND_TIMEOUT, 5000000);
$m->addServer($host, (int)$port);
if (getenv("CLIENT_USER"))
	$m->setSaslAuthData(getenv("CLIENT_USER"), getenv("CLIENT_PASSWORD"));

check("flush", $m->flush(), true);
check("set", $m->set("k1", "v1"), true);
check("get", $m->get("k1"), "v1");
check("get miss", $m->get("nokey"), false);
check("get miss code", $m->getResultCode(), Memcached::RES_NOTFOUND);
check("setMulti", $m->setMulti(["k2" => "v2", "k3" => "v3"]), true);
check("getMulti", $m->getMulti(["k1", "k2", "k3", "nokey"]),
    ["k1" => "v1", "k2" => "v2", "k3" => "v3"]);
check("add existing", $m->add("k1", "x"), false);
check("add new", $m->add("k4", "v4"), true);
check("replace missing", $m->replace("k5", "x"), false);
check("replace existing", $m->replace("k4", "v4b"), true);
check("get replaced", $m->get("k4"), "v4b");
check("delete", $m->delete("k4"), true);
check("delete miss", $m->delete("k4"), false);
check("get deleted", $m->get("k4"), false);
check("incr create", $m->increment("n", 1, 10), 10);
check("incr", $m->increment("n", 5), 15);
check("decr", $m->decrement("n", 20), 0);
check("incr miss", $m->increment("nonum", 1), false);
check("set s", $m->set("s", "abc"), true);
check("append", $m->append("s", "def"), true);
check("prepend", $m->prepend("s", "xyz"), true);
check("get appended", $m->get("s"), "xyzabcdef");
check("append miss", $m->append("nos", "def"), false);
$r = $m->get("s", null, Memcached::GET_EXTENDED);
check("get cas", $r["value"], "xyzabcdef");
check("cas", $m->cas($r["cas"], "s", "new"), true);
check("cas stale", $m->cas($r["cas"], "s", "newer"), false);
check("cas stale code", $m->getResultCode(), Memcached::RES_DATA_EXISTS);
check("get after cas", $m->get("s"), "new");
check("touch", $m->touch("s", 100), true);
check("touch miss", $m->touch("nos", 100), false);
$stats = array_values($m->getStats())[0];
check("stats pid", isset($stats["pid"]), true);
check("stats curr_items", $stats["curr_items"] >= 1, true);
$big = "";
for ($i = 0; $i < 500 * 1024; $i++)
	$big .= chr($i * 7 % 251);
check("set 500 KB", $m->set("big", $big), true);
check("get 500 KB", $m->get("big") === $big, true);
$nasty = "x\r\nflush_all\r\n\x80\x08\x00\x00 END\r\n";
check("set binary-safe", $m->set("nasty", $nasty), true);
check("get binary-safe", $m->get("nasty"), $nasty);
check("others survive", $m->getMulti(["k1", "k2", "k3"]),
    ["k1" => "v1", "k2" => "v2", "k3" => "v3"]);
check("deleteMulti", $m->deleteMulti(["k2", "k3"]), ["k2" => true, "k3" => true]);
check("flush all", $m->flush(), true);
check("get after flush", $m->get("k1"), false);
exit($failed ? 1 : 0);
