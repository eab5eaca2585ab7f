%% upgsrv: the server that upgrades in bench/upgrade_run.py, compiled twice
%% (-DVSN=1, -DVSN=2). Its state is a binary of the size the bench asks for.
-module(upgsrv).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2, code_change/3]).
-vsn(?VSN).

start(Bytes) -> gen_server:start(?MODULE, Bytes, []).

init(Bytes) -> {ok, binary:copy(<<7>>, Bytes)}.

handle_call(ping, _From, State) -> {reply, ?VSN, State}.

handle_cast(_, State) -> {noreply, State}.

%% Erlang's code_change: the state, made the new version's (here as it is).
code_change(_OldVsn, State, _Extra) -> {ok, State}.
