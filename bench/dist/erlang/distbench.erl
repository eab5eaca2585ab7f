%% distbench.erl — BEAM's side of the distribution benchmark
%% (bench/dist_run.py), the same protocol as bench/dist/c/distbench.c:
%% messages are {Tag, <<8 bytes>>}, as wisp's {Tag, Binary} on the wire.
%%
%%   erl -sname S -noshell -s distbench server
%%   erl -sname C -noshell -s distbench pingpong NODE N
%%   erl -sname C -noshell -s distbench flood NODE N
-module(distbench).
-export([server/0, pingpong/1, flood/1]).

server() ->
    register(pong, self()),
    io:format("READY~n"),
    serve(0).

serve(Count) ->
    receive
        {2, _} -> serve(Count + 1);
        {From, {3, _}} -> From ! {3, <<Count:64/little>>}, serve(0);
        {From, {Tag, Bin}} -> From ! {Tag, Bin}, serve(Count)
    end.

%% Erlang messages carry no sender: the client sends {Self, Msg} where the
%% wisp client's sender travels in the frame (SEND_SENDER); the server
%% above accepts both forms.
find_pong(Node) ->
    {pong, Node} ! {self(), {1, <<0:64>>}},
    receive {1, _} -> ok after 30000 -> halt(4) end.

%% (-s passes the arguments as atoms.)
pingpong([Node, NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    find_pong(Node),
    Pong = rpc_pid(Node),
    T0 = erlang:monotonic_time(nanosecond),
    ping(Pong, N),
    T = erlang:monotonic_time(nanosecond) - T0,
    io:format("RESULT pingpong ~.3f~n", [T / 1000 / N]),
    halt().

ping(_, 0) -> ok;
ping(Pong, I) ->
    Pong ! {self(), {1, <<I:64>>}},
    receive {1, _} -> ping(Pong, I - 1) end.

flood([Node, NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    find_pong(Node),
    Pong = rpc_pid(Node),
    T0 = erlang:monotonic_time(nanosecond),
    send_n(Pong, N),
    Pong ! {self(), {3, <<>>}},
    Count = receive {3, <<C:64/little>>} -> C end,
    T = erlang:monotonic_time(nanosecond) - T0,
    case Count of
        N -> io:format("RESULT flood ~w~n", [round(N / (T / 1.0e9))]);
        _ -> io:format("ERROR flood: ~p of ~p arrived~n", [Count, N])
    end,
    halt().

send_n(_, 0) -> ok;
send_n(Pong, I) -> Pong ! {2, <<I:64>>}, send_n(Pong, I - 1).

rpc_pid(Node) ->
    %% The server's pid, as a client holds it after its first reply.
    rpc:call(Node, erlang, whereis, [pong]).
