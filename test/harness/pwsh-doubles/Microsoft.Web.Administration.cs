// Test double of IIS's Microsoft.Web.Administration.dll for Linux: the part of its API
// gmsa-host.ps1 uses (ServerManager, ApplicationPools[name], ProcessModel, State, Recycle,
// CommitChanges), with the same names and types, backed by the test host's state file
// (GMSA_DOUBLE_STATE, its appPools). Compiled by state.ts into
// $windir/System32/inetsrv/Microsoft.Web.Administration.dll, where the script loads it from, as
// on Windows. As the real one: a ServerManager commits once; after that its objects are read
// only and a second CommitChanges throws.
using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.Web.Administration
{
    public enum ObjectState { Starting = 0, Started = 1, Stopping = 2, Stopped = 3, Unknown = 4 }

    public enum ProcessModelIdentityType { LocalSystem = 0, LocalService = 1, NetworkService = 2, SpecificUser = 3, ApplicationPoolIdentity = 4 }

    public sealed class ApplicationPoolProcessModel
    {
        internal ServerManager Owner;
        private ProcessModelIdentityType identityType;
        private string userName = "";
        private string password = "";

        public ProcessModelIdentityType IdentityType { get { return identityType; } set { Owner.AssertWritable(); identityType = value; } }
        public string UserName { get { return userName; } set { Owner.AssertWritable(); userName = value ?? ""; } }
        public string Password { get { return password; } set { Owner.AssertWritable(); password = value ?? ""; } }

        internal void Load(ProcessModelIdentityType type, string user, string pass) { identityType = type; userName = user; password = pass; }
    }

    public sealed class ApplicationPool
    {
        internal ServerManager Owner;
        public string Name { get; internal set; }
        public ObjectState State { get; internal set; }
        public ApplicationPoolProcessModel ProcessModel { get; } = new ApplicationPoolProcessModel();

        public ObjectState Recycle()
        {
            Owner.Update(root =>
            {
                JsonObject pool = ServerManager.FindPool(root, Name);
                int recycles = pool["Recycles"] != null ? pool["Recycles"].GetValue<int>() : 0;
                pool["Recycles"] = recycles + 1;
                ServerManager.AddEvent(root, "ApplicationPool.Recycle", Name);
            });
            return ObjectState.Started;
        }
    }

    public sealed class ApplicationPoolCollection : IEnumerable<ApplicationPool>
    {
        private readonly List<ApplicationPool> pools = new List<ApplicationPool>();

        internal void Add(ApplicationPool pool) { pools.Add(pool); }

        // Exact name, case-insensitive, as IIS matches pool names; null when there is none.
        public ApplicationPool this[string name]
        {
            get
            {
                foreach (ApplicationPool p in pools) if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p;
                return null;
            }
        }

        public int Count { get { return pools.Count; } }
        public IEnumerator<ApplicationPool> GetEnumerator() { return pools.GetEnumerator(); }
        IEnumerator IEnumerable.GetEnumerator() { return pools.GetEnumerator(); }
    }

    public sealed class ServerManager : IDisposable
    {
        private readonly string path;
        private bool committed;

        public ApplicationPoolCollection ApplicationPools { get; } = new ApplicationPoolCollection();

        public ServerManager()
        {
            path = Environment.GetEnvironmentVariable("GMSA_DOUBLE_STATE");
            JsonNode root = JsonNode.Parse(File.ReadAllText(path));
            foreach (JsonNode node in root["appPools"].AsArray())
            {
                ApplicationPool pool = new ApplicationPool { Owner = this, Name = (string)node["Name"] };
                pool.State = (string)node["State"] == "Started" ? ObjectState.Started : ObjectState.Stopped;
                pool.ProcessModel.Owner = this;
                pool.ProcessModel.Load(
                    (ProcessModelIdentityType)Enum.Parse(typeof(ProcessModelIdentityType), (string)node["IdentityType"]),
                    (string)node["UserName"] ?? "",
                    (string)node["Password"] ?? "");
                ApplicationPools.Add(pool);
            }
        }

        internal void AssertWritable()
        {
            if (committed)
                throw new InvalidOperationException("The configuration object is read only, because it has been committed by a call to ServerManager.CommitChanges(). If write access is required, use ServerManager to get a new reference.");
        }

        public void CommitChanges()
        {
            AssertWritable();
            Update(root =>
            {
                foreach (ApplicationPool pool in ApplicationPools)
                {
                    JsonObject node = FindPool(root, pool.Name);
                    string type = pool.ProcessModel.IdentityType.ToString();
                    if ((string)node["IdentityType"] != type || (string)node["UserName"] != pool.ProcessModel.UserName)
                        AddEvent(root, "ServerManager.CommitChanges", pool.Name + " " + type + " " + pool.ProcessModel.UserName);
                    node["IdentityType"] = type;
                    node["UserName"] = pool.ProcessModel.UserName;
                    node["Password"] = pool.ProcessModel.Password;
                }
            });
            committed = true;
        }

        public void Dispose() { }

        internal void Update(Action<JsonNode> change)
        {
            JsonNode root = JsonNode.Parse(File.ReadAllText(path));
            change(root);
            string tmp = path + ".iis.tmp";
            File.WriteAllText(tmp, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, path, true);
        }

        internal static JsonObject FindPool(JsonNode root, string name)
        {
            foreach (JsonNode node in root["appPools"].AsArray())
                if (string.Equals((string)node["Name"], name, StringComparison.OrdinalIgnoreCase)) return node.AsObject();
            throw new InvalidOperationException("no pool " + name);
        }

        internal static void AddEvent(JsonNode root, string command, string detail)
        {
            if (root["events"] == null) root["events"] = new JsonArray();
            root["events"].AsArray().Add(new JsonObject { ["command"] = command, ["detail"] = detail });
        }
    }
}
