%% procbench.erl -- the process workloads of bench/proc_run.py, Erlang side.
%%
%% Same semantics as bench/proc/go/main.go and bench/proc/c/*.c; see the
%% docstring of bench/proc_run.py for the contract. Every workload times
%% itself with erlang:monotonic_time/1 and prints one line
%%
%%     RESULT key=value ...
%%
%% so that VM start-up is not counted. Run with
%%
%%     erl -noshell +P 4194304 -pa DIR -run procbench main WORKLOAD ARGS...
%%
%% (+P: skynet has ~1.1M processes alive at once, above the default limit.)
-module(procbench).
-export([main/1]).
%% Entry points for erlang:hibernate/3.
-export([idle_wait/0, hib_child/1]).

main([W | Args]) ->
    Ns = [list_to_integer(A) || A <- Args],
    try run(list_to_atom(W), Ns) of
        _ -> halt(0)
    catch
        C:R:St ->
            io:format(standard_error, "procbench: ~p:~p~n~p~n", [C, R, St]),
            halt(1)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

%% 1. spawn+exit: spawn N processes that exit at once; wait for every DOWN.
run(spawn, [N]) ->
    T0 = now_ns(),
    spawn_n(N),
    wait_down(N),
    T1 = now_ns(),
    io:format("RESULT spawn_us=~.4f n=~b~n", [(T1 - T0) / 1000 / N, N]);

%% 2. idle processes: N processes blocked in receive; then print READY and
%% sleep until the harness has read our RSS and kills us.
run(idle, [N]) ->
    Self = self(),
    [spawn(fun() -> Self ! up, receive stop -> ok end end) || _ <- lists:seq(1, N)],
    wait_msg(up, N),
    io:format("READY n=~b~n", [N]),
    timer:sleep(infinity);

%% 2b. hibernated idle processes: as idle, but each process waits in
%% erlang:hibernate/3 (its stack discarded, its heap shrunk to fit).
run(idlehib, [N]) ->
    Self = self(),
    [spawn(fun() -> Self ! up, erlang:hibernate(?MODULE, idle_wait, []) end)
     || _ <- lists:seq(1, N)],
    wait_msg(up, N),
    io:format("READY n=~b~n", [N]),
    timer:sleep(infinity);

%% 3. ping-pong: N round trips of a small message between two processes.
run(pingpong, [N]) ->
    Pong = spawn(fun pong/0),
    T0 = now_ns(),
    ping(Pong, N),
    T1 = now_ns(),
    Pong ! stop,
    io:format("RESULT pingpong_us=~.4f n=~b~n", [(T1 - T0) / 1000 / N, N]);

%% 4. ring: P processes, each forwarding a token to the next; M hops in all.
run(ring, [P, M]) ->
    Self = self(),
    Pids = [spawn(fun() -> receive {next, Next, I} -> ring_node(Next, Self, I) end end)
            || _ <- lists:seq(1, P)],
    [First | _] = Pids,
    lists:foldr(fun(Pid, {Next, I}) -> Pid ! {next, Next, I}, {Pid, I - 1} end,
                {First, P - 1}, Pids),
    T0 = now_ns(),
    First ! {token, M},
    Last = receive {done, L} -> L end,
    T1 = now_ns(),
    [Pid ! stop || Pid <- Pids],
    %% The token starts at node 0 with M, so it reaches 0 at node M rem P.
    io:format("RESULT ring_hop_us=~.4f procs=~b hops=~b last=~b~n",
              [(T1 - T0) / 1000 / M, P, M, Last]);

%% 5. skynet: a tree of processes, 10 children each, Size leaves that send
%% their number up; every node sums its children's.
run(skynet, [Size]) ->
    Self = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Self, 0, Size) end),
    Sum = receive S -> S end,
    T1 = now_ns(),
    io:format("RESULT skynet_s=~.4f leaves=~b sum=~b~n", [(T1 - T0) / 1.0e9, Size, Sum]);

%% 6. sleepers: N processes each looping timer:sleep(100) for Secs seconds,
%% counting wake-ups; READY when all are up (the harness reads our CPU
%% time), RESULT with the sum of their counts (it reads it again).
run(sleepers, [N, Secs]) ->
    Self = self(),
    Pids = [spawn(fun() -> sleeper(Self) end) || _ <- lists:seq(1, N)],
    wait_msg(up, N),
    io:format("READY n=~b~n", [N]),
    [Pid ! {go, Secs * 1000} || Pid <- Pids],
    Total = sum_counts(N, 0),
    io:format("RESULT wakeups=~b n=~b secs=~b~n", [Total, N, Secs]),
    timer:sleep(infinity);

%% 7. wake from hibernation: K processes that hibernate (erlang:hibernate/3)
%% between answers, one round trip each per pass, against K that wait in a
%% plain receive; us per round trip, best of Passes passes.
run(hibwake, [K, Passes]) ->
    Awake = hib_group(K, Passes, false),
    Hib = hib_group(K, Passes, true),
    io:format("RESULT awake_us=~.4f hib_us=~.4f k=~b passes=~b~n", [Awake, Hib, K, Passes]).

spawn_n(0) -> ok;
spawn_n(N) -> spawn_monitor(fun() -> ok end), spawn_n(N - 1).

wait_down(0) -> ok;
wait_down(N) -> receive {'DOWN', _, process, _, normal} -> wait_down(N - 1) end.

idle_wait() -> receive stop -> ok end.

sleeper(Parent) ->
    Parent ! up,
    receive {go, Ms} -> ok end,
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Parent ! {count, sleep_loop(Deadline, 0)},
    receive stop -> ok end.

sleep_loop(Deadline, C) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true -> timer:sleep(100), sleep_loop(Deadline, C + 1);
        false -> C
    end.

sum_counts(0, Acc) -> Acc;
sum_counts(N, Acc) -> receive {count, C} -> sum_counts(N - 1, Acc + C) end.

hib_group(K, Passes, Hibernate) ->
    Self = self(),
    Kids = [spawn(fun() -> Self ! up, hib_start(Self, Hibernate) end) || _ <- lists:seq(1, K)],
    wait_msg(up, K),
    Best = lists:min([hib_pass(Kids) / K || _ <- lists:seq(1, Passes)]),
    [Kid ! stop || Kid <- Kids],
    Best.

hib_start(Parent, true) -> erlang:hibernate(?MODULE, hib_child, [Parent]);
hib_start(Parent, false) -> awake_child(Parent).

%% One pass: time for a round trip to each process in turn, in us, after
%% giving them time to hibernate.
hib_pass(Kids) ->
    timer:sleep(200),
    T0 = now_ns(),
    lists:foreach(fun(Kid) -> Kid ! {ping, self()}, receive {pong, Kid} -> ok end end, Kids),
    (now_ns() - T0) / 1000.

hib_child(Parent) ->
    receive
        {ping, From} -> From ! {pong, self()}, erlang:hibernate(?MODULE, hib_child, [Parent]);
        stop -> ok
    end.

awake_child(Parent) ->
    receive
        {ping, From} -> From ! {pong, self()}, awake_child(Parent);
        stop -> ok
    end.

wait_msg(_, 0) -> ok;
wait_msg(M, N) -> receive M -> wait_msg(M, N - 1) end.

pong() ->
    receive
        {ping, From, X} -> From ! {pong, X}, pong();
        stop -> ok
    end.

ping(_, 0) -> ok;
ping(Pong, N) ->
    Pong ! {ping, self(), N},
    receive {pong, N} -> ping(Pong, N - 1) end.

ring_node(Next, Main, I) ->
    receive
        {token, 0} -> Main ! {done, I}, ring_node(Next, Main, I);
        {token, K} -> Next ! {token, K - 1}, ring_node(Next, Main, I);
        stop -> ok
    end.

skynet(Parent, Num, 1) -> Parent ! Num;
skynet(Parent, Num, Size) ->
    Self = self(),
    Sub = Size div 10,
    [spawn(fun() -> skynet(Self, Num + I * Sub, Sub) end) || I <- lists:seq(0, 9)],
    Parent ! sum_n(10, 0).

sum_n(0, Acc) -> Acc;
sum_n(N, Acc) -> receive X -> sum_n(N - 1, Acc + X) end.
