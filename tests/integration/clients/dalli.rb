# dalli.rb -- the binary client check of test_client_dalli.py: Ruby's
# Dalli 3 (binary protocol only) against the server at ARGV[0]
# (host:port).  Every operation a Rails cache uses, plus the raw ones;
# prints one line per check and exits 1 at the first wrong answer.
require "dalli"

$failed = false
def check(name, got, want)
  if got == want
    puts "ok   #{name}"
  else
    puts "FAIL #{name}: got #{got.inspect[0, 200]}, want #{want.inspect[0, 200]}"
    $failed = true
  end
end

opts = { raw: true, compress: false, socket_timeout: 5, socket_max_failures: 0,
         value_max_bytes: 1024 * 1024 }
if ENV["CLIENT_USER"]
  opts[:username] = ENV["CLIENT_USER"]
  opts[:password] = ENV["CLIENT_PASSWORD"]
end
dc = Dalli::Client.new(ARGV[0], opts)
# values go as bytes (flags 0), not Marshal: what other clients see
R = { raw: true }.freeze

check("flush", dc.flush, [true])
check("set", dc.set("k1", "v1", nil, R) != false, true)
check("get", dc.get("k1"), "v1")
check("get miss", dc.get("nokey"), nil)
dc.set("k2", "v2", nil, R)
dc.set("k3", "v3", nil, R)
check("get_multi", dc.get_multi("k1", "k2", "k3", "nokey"),
      { "k1" => "v1", "k2" => "v2", "k3" => "v3" })
check("add existing", dc.add("k1", "x", nil, R) ? true : false, false)
check("add new", dc.add("k4", "v4", nil, R) != false, true)
dc.replace("k5", "x", nil, R)
check("replace missing", dc.get("k5"), nil)
check("replace existing", dc.replace("k4", "v4b", nil, R) != false, true)
check("get replaced", dc.get("k4"), "v4b")
check("delete", dc.delete("k4"), true)
check("delete miss", dc.delete("k4") ? true : false, false)
check("get deleted", dc.get("k4"), nil)
check("incr create", dc.incr("n", 1, nil, 10), 10)
check("incr", dc.incr("n", 5), 15)
check("decr", dc.decr("n", 20), 0)
check("incr no create", dc.incr("nonum", 1), nil)
dc.set("s", "abc", nil, R)
check("append", dc.append("s", "def"), true)
check("prepend", dc.prepend("s", "xyz"), true)
check("get appended", dc.get("s"), "xyzabcdef")
check("append miss", dc.append("nos", "def") ? true : false, false)
value, cas = dc.get_cas("s")
check("get_cas", value, "xyzabcdef")
check("set_cas", dc.set_cas("s", "new", cas, nil, R) != false, true)
check("set_cas stale", dc.set_cas("s", "newer", cas, nil, R) ? true : false, false)
check("get after cas", dc.get("s"), "new")
check("cas block", dc.cas("s", nil, R) { |v| v + "!" } != false, true)
check("get cas block", dc.get("s"), "new!")
check("touch", dc.touch("s", 100), true)
check("touch miss", dc.touch("nos", 100) ? true : false, false)
check("gat", dc.gat("s", 200), "new!")
stats = dc.stats.values.first
check("stats pid", stats.key?("pid"), true)
check("stats curr_items", stats["curr_items"].to_i >= 1, true)
big = (0...500 * 1024).map { |i| (i * 7 % 251).chr }.join.b
check("set 500 KB", dc.set("big", big, nil, R) != false, true)
check("get 500 KB", dc.get("big") == big, true)
nasty = "x\r\nflush_all\r\n\x80\x08\x00\x00 END\r\n".b
check("set binary-safe", dc.set("nasty", nasty, nil, R) != false, true)
check("get binary-safe", dc.get("nasty"), nasty)
check("others survive", dc.get_multi("k1", "k2", "k3"),
      { "k1" => "v1", "k2" => "v2", "k3" => "v3" })
check("flush all", dc.flush, [true])
check("get after flush", dc.get("k1"), nil)
dc.close
exit($failed ? 1 : 0)
