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
    io:format("RESULT skynet_s=~.4f leaves=~b sum=~b~n", [(T1 - T0) / 1.0e9, Size, Sum]).

spawn_n(0) -> ok;
spawn_n(N) -> spawn_monitor(fun() -> ok end), spawn_n(N - 1).

wait_down(0) -> ok;
wait_down(N) -> receive {'DOWN', _, process, _, normal} -> wait_down(N - 1) end.

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
